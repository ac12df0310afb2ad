"""Found under load: ten first submissions to a namespace that does not exist yet, at once.

Each sees the namespace missing and appends NamespaceCreated; all but one lose the race on the
namespace stream and used to get 409 ``namespace already exists`` for a valid submission.
"""

from __future__ import annotations

import asyncio

from tests.fixtures.api import ApiHarness, api  # noqa: F401


async def test_concurrent_first_submissions_to_a_new_namespace_all_succeed(
    api: ApiHarness,  # noqa: F811
) -> None:
    headers = api.admin()

    async def submit(i: int) -> tuple[int, str]:
        spec = f"name: env{i}\nchannels: [conda-forge]\ndependencies: [python]\n"
        r = await api.client.post(
            "/api/v1/specification/",
            json={"namespace": "brand-new", "specification": spec},
            headers=headers,
        )
        return r.status_code, r.text

    answers = await asyncio.gather(*(submit(i) for i in range(10)))
    assert [status for status, _ in answers] == [200] * 10, answers
    r = await api.client.get("/api/v1/namespace/brand-new/", headers=headers)
    assert r.status_code == 200, r.text
    events = await api.store.read_stream("namespace-brand-new")
    assert [e.type for e in events] == ["NamespaceCreated"]
