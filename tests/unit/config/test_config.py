"""One config: the connection form, the hook's validation and the client agree on every extra and default."""

from __future__ import annotations

import dataclasses
import inspect
import json

import pytest

from airflow_provider_orange_sms.client import OrangeSMSClient, RetryPolicy
from airflow_provider_orange_sms.config.connection_config import (
    OrangeSMSConfig,
    config_from_connection,
    extra_fields,
)
from airflow_provider_orange_sms.get_provider_info import get_provider_info


class _Connection:
    """The four fields and the extras config_from_connection reads, as an Airflow Connection has them."""

    def __init__(self, extra=None, login="id", password="s3cr3t-pw", host=None, port=None):
        self.login, self.password, self.host, self.port = login, password, host, port
        self.extra_dejson = extra or {}


def _form():
    [conn_type] = get_provider_info()["connection-types"]
    return conn_type


def _defaults():
    return {f.name: f.default for f in dataclasses.fields(OrangeSMSConfig)}


def test_every_form_field_is_a_config_field_showing_the_config_default():
    defaults = _defaults()
    fields = _form()["conn-fields"]
    assert set(fields) == {f.name for f, _ in extra_fields()}
    for name, spec in fields.items():
        assert name in defaults, name
        schema = spec["schema"]
        if "default" in schema:
            assert schema["default"] == defaults[name], name
        else:
            # Only extras without a default, and those Airflow masks (their name contains "token").
            assert defaults[name] is None or "token" in name, name
        if "enum" in schema:
            assert defaults[name] in schema["enum"], name


def test_form_placeholders_of_extras_are_their_defaults_where_they_have_one():
    placeholders = _form()["ui-field-behaviour"]["placeholders"]
    defaults = _defaults()
    for name, default in defaults.items():
        if name in placeholders and isinstance(default, (int, float)):
            assert float(placeholders[name]) == default, name
    assert placeholders["host"] == defaults["base_url"]
    assert placeholders["token_path"] == defaults["token_path"]


def test_the_client_and_the_retry_policy_default_to_the_config_defaults():
    defaults = _defaults()
    client_defaults = inspect.signature(OrangeSMSClient).parameters
    shared = set(defaults) & set(client_defaults)
    assert shared >= {
        "base_url",
        "token_path",
        "rate_limit_per_second",
        "connect_timeout",
        "max_message_length",
    }
    for name in shared:
        assert client_defaults[name].default == defaults[name], name
    assert (RetryPolicy().max_attempts, RetryPolicy().backoff_initial) == (
        defaults["max_attempts"],
        defaults["retry_backoff"],
    )


def test_an_empty_connection_reads_as_the_defaults():
    config = config_from_connection(_Connection())
    assert config == OrangeSMSConfig(client_id="id", client_secret="s3cr3t-pw")


@pytest.mark.parametrize("empty", [None, "", {}, []])
def test_an_empty_extra_means_its_default(empty):
    extra = {f.name: empty for f, _ in extra_fields()}
    assert config_from_connection(_Connection(extra)) == OrangeSMSConfig(
        client_id="id", client_secret="s3cr3t-pw"
    )


def test_every_extra_is_read_and_validated():
    given = {
        "authorization_header": "Basic aWQ6c2VjcmV0",
        "sender_address": "tel:+2210000",
        "sender_name": " Airflow ",
        "country": "sn",
        "token_path": "/oauth/v2/token",
        "rate_limit_per_second": "2",
        "auth_cache": "Variable",
        "rate_limit_backend": " Redis ",
        "redis_conn_id": "shared_redis",
        "connect_timeout": 3,
        "read_timeout": "7.5",
        "max_attempts": "2",
        "retry_backoff": 0,
        "max_message_length": 160,
        "sender_addresses": json.dumps({"ci": 2250000}),
    }
    assert set(given) == {f.name for f, _ in extra_fields()}, "give a value for each extra"
    config = config_from_connection(_Connection(given, host="localhost", port=8089))
    assert dataclasses.asdict(config) == {
        "client_id": "id",
        "client_secret": "s3cr3t-pw",
        "base_url": "https://localhost:8089",
        "authorization_header": "Basic aWQ6c2VjcmV0",
        "sender_address": "2210000",
        "sender_name": "Airflow",
        "country": "SEN",
        "token_path": "/oauth/v2/token",
        "rate_limit_per_second": 2.0,
        "auth_cache": "variable",
        "rate_limit_backend": "redis",
        "redis_conn_id": "shared_redis",
        "connect_timeout": 3.0,
        "read_timeout": 7.5,
        "max_attempts": 2,
        "retry_backoff": 0.0,
        "max_message_length": 160,
        "sender_addresses": {"CIV": "2250000"},
    }


def test_secrets_are_reported_to_the_masker_and_left_out_of_the_repr():
    seen = []
    config = config_from_connection(
        _Connection({"authorization_header": "Basic aWQ6c2VjcmV0", "read_timeout": 5}), on_secret=seen.append
    )
    assert seen == ["s3cr3t-pw", "Basic aWQ6c2VjcmV0"]
    assert "s3cr3t-pw" not in repr(config)
    assert "aWQ6c2VjcmV0" not in repr(config)


def test_the_secrets_are_masked_before_a_bad_extra_stops_the_reading():
    seen = []
    with pytest.raises(ValueError, match="Invalid connection extra read_timeout='soon'"):
        config_from_connection(
            _Connection({"authorization_header": "Basic aWQ6c2VjcmV0", "read_timeout": "soon"}),
            on_secret=seen.append,
        )
    assert seen == ["s3cr3t-pw", "Basic aWQ6c2VjcmV0"]


@pytest.mark.parametrize("name", ["auth_cache", "token_cache"])
def test_a_bad_auth_cache_names_the_extra_and_the_choices(name):
    with pytest.raises(ValueError, match=rf"{name}='memcached'.*file, redis, variable, none"):
        config_from_connection(_Connection({name: "memcached"}))


def test_the_old_token_cache_name_still_works_and_warns():
    from airflow.exceptions import AirflowProviderDeprecationWarning

    with pytest.warns(
        AirflowProviderDeprecationWarning, match="'token_cache' is deprecated: name it 'auth_cache'"
    ):
        config = config_from_connection(_Connection({"token_cache": "Redis"}))
    assert config.auth_cache == config.token_cache == "redis"
    with pytest.warns(AirflowProviderDeprecationWarning):
        same = config_from_connection(_Connection({"auth_cache": "redis", "token_cache": "redis"}))
    assert same.auth_cache == "redis"


def test_the_old_and_new_names_must_agree():
    with (
        pytest.warns(DeprecationWarning, match="name it .auth_cache."),
        pytest.raises(
            ValueError, match="auth_cache='file' and token_cache='redis' disagree: keep auth_cache only"
        ),
    ):
        config_from_connection(_Connection({"auth_cache": "file", "token_cache": "redis"}))


def test_only_secrets_have_names_airflow_masks():
    try:
        from airflow.sdk._shared.secrets_masker import should_hide_value_for_key
    except ImportError:  # Airflow < 3.1
        from airflow.sdk.execution_time.secrets_masker import should_hide_value_for_key

    masked = {f.name for f, _ in extra_fields() if should_hide_value_for_key(f.name)}
    # token_path is not a secret, but its value (/oauth/v3/token) is hidden in task logs too.
    assert masked == {"authorization_header", "token_path"}


def test_extras_that_are_not_an_object_are_refused():
    with pytest.raises(ValueError, match=r"Invalid connection extra \['x'\]: expected a JSON object"):
        config_from_connection(_Connection(["x"]))


def test_the_client_is_built_from_the_config(cache_dir):
    config = config_from_connection(
        _Connection({"country": "CIV", "max_attempts": 3, "retry_backoff": 0.5, "rate_limit_per_second": 0})
    )
    client = OrangeSMSClient.from_config(config, state_dir=str(cache_dir))
    assert (client.country, client.retry.max_attempts, client.retry.backoff_initial) == ("CIV", 3, 0.5)
    assert client.limiter is None
    assert client.timeout == (config.connect_timeout, config.read_timeout)
    assert client.token_url == config.base_url + config.token_path
