from __future__ import annotations

from airflow_provider_orange_sms.hooks.orange_sms import OrangeSMSHook


def test_hook_sends_through_connection(orange_conn, sandbox):
    hook = OrangeSMSHook(orange_conn)
    resource_id = hook.send_sms("+2250700000001", "hello")
    assert [m.resource_id for m in sandbox.state.messages] == [resource_id]
    ok, message = hook.test_connection()
    assert ok, message
