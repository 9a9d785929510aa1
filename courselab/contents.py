"""What the student's lab shows of the course folder, and how a notebook reaches it.

- The root lists release/ and solutions/ (and the README), not the course's machinery
  (source/ holds the hidden tests, grader/ and tests/ are the instructor's). It is tidiness,
  not a wall: a repository clone holds source/ anyway; paths below the root are unchanged.
- A notebook opens with the language_info of this machine's Python kernel. JupyterLab writes
  the kernel's language_info (Python's full version included) into a notebook as soon as
  its kernel starts, so a notebook built elsewhere, or with a bare {"name": "python"} as
  release/ and solutions/ carry, was "modified" before the student typed anything and asked
  to be saved on closing (jupyter/notebook#2123). No build can know the student's Python
  version; the server that starts the kernel does. Saving writes what JupyterLab would.
"""

from __future__ import annotations

import functools

from jupyter_server.services.contents.largefilemanager import AsyncLargeFileManager

SHOWN = ("release", "solutions", "README.md")


@functools.cache
def kernel_language_info() -> dict:
    """The language_info a python3 kernel of this environment reports (its kernel_info)."""
    from ipykernel.ipkernel import IPythonKernel

    return dict(IPythonKernel.language_info)


class StudentContentsManager(AsyncLargeFileManager):
    """jupyter_server's default contents manager, with the two changes above."""

    async def get(self, path, content=True, type=None, format=None, require_hash=False):
        model = await super().get(
            path, content=content, type=type, format=format, require_hash=require_hash
        )
        if not content or model.get("content") is None:
            return model
        if model["type"] == "directory" and path.strip("/") == "":
            model["content"] = [item for item in model["content"] if item["name"] in SHOWN]
        elif model["type"] == "notebook":
            metadata = model["content"].setdefault("metadata", {})
            kernel = (metadata.get("kernelspec") or {}).get("name")
            language = (metadata.get("language_info") or {}).get("name")
            # The python3 kernel is this environment's (jupyter_client starts a spec's
            # "python" with the server's own interpreter).
            if kernel == "python3" and language in (None, "python"):
                metadata["language_info"] = kernel_language_info()
        return model
