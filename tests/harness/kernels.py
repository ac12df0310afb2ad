"""Jupyter kernels of built environments, started the way JupyterHub starts them."""

from __future__ import annotations

import json
from pathlib import Path

from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import AsyncKernelManager


async def run_in_kernel(prefix: Path, code: str, work: Path) -> str:
    """Run `code` in a Jupyter kernel of the environment at `prefix` and return its stdout.

    The kernelspec is what a JupyterHub would see for the environment (`<prefix>/bin/python -m
    ipykernel_launcher`); the kernel gets a clean environment, so nothing leaks from this venv.
    """
    spec_dir = work / "kernels" / "env"
    spec_dir.mkdir(parents=True)
    argv = [str(prefix / "bin" / "python"), "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    spec = {"argv": argv, "display_name": "env", "language": "python"}
    (spec_dir / "kernel.json").write_text(json.dumps(spec))
    manager = AsyncKernelManager(
        kernel_name="env",
        kernel_spec_manager=KernelSpecManager(kernel_dirs=[str(work / "kernels")]),
        connection_file=str(work / "connection.json"),
    )
    env = {"PATH": f"{prefix}/bin:/usr/bin:/bin", "HOME": str(work), "LANG": "C.UTF-8"}
    await manager.start_kernel(env=env, cwd=str(work))
    client = manager.client()
    client.start_channels()
    try:
        await client.wait_for_ready(timeout=120)
        msg_id = client.execute(code)
        out = []
        while True:
            msg = await client.get_iopub_msg(timeout=60)
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            kind, content = msg["msg_type"], msg["content"]
            if kind == "stream" and content["name"] == "stdout":
                out.append(content["text"])
            elif kind == "error":
                raise AssertionError("\n".join(content["traceback"]))
            elif kind == "status" and content["execution_state"] == "idle":
                return "".join(out)
    finally:
        client.stop_channels()
        await manager.shutdown_kernel(now=True)
