"""CSV import page: upload, then a progress bar htmx refreshes until the report is ready."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, Response, get, post
from litestar.datastructures import UploadFile
from litestar.params import FromPath
from litestar.response import Template

from hub.errors import ApiError
from hub.services import contacts_import
from ui.auth import hub_of, require_user
from ui.pages import FormErrors, is_htmx, render, see_other


class ContactImportsController(Controller):
    path = "/contacts/import"
    guards = [require_user]
    include_in_schema = False

    def _upload_page(self, request: Request[Any, Any, Any], errors: FormErrors) -> Template:
        return render(
            request,
            "contacts/import.html",
            status_code=422 if errors else 200,
            errors=errors,
            max_mb=contacts_import.MAX_IMPORT_BYTES // (1024 * 1024),
        )

    @get("/")
    async def index(self, request: Request[Any, Any, Any]) -> Template:
        return self._upload_page(request, FormErrors())

    @post(
        "/",
        status_code=200,
        request_max_body_size=contacts_import.MAX_IMPORT_BYTES + 64 * 1024,
    )
    async def upload(self, request: Request[Any, Any, Any]) -> Template | Response[Any]:
        """Check the file, start writing it in the background, show its progress."""
        errors = FormErrors()
        try:
            form = await request.form()
        except Exception:
            form = None
        upload = form.get("file") if form is not None else None
        if not isinstance(upload, UploadFile):
            errors.add("file", "choose a CSV file")
            return self._upload_page(request, errors)
        data = await upload.read()
        if not data.strip():
            errors.add("file", "the file is empty")
            return self._upload_page(request, errors)
        try:
            job_id = await contacts_import.start_import(
                hub_of(request), data, upload.filename or ""
            )
        except ApiError as exc:
            errors.add("file", exc.message)
            return self._upload_page(request, errors)
        return see_other(f"/contacts/import/{job_id}")

    @get("/{import_id:str}")
    async def progress(self, request: Request[Any, Any, Any], import_id: FromPath[str]) -> Template:
        """The import page, or (htmx) just its progress card."""
        job = await contacts_import.get_import(hub_of(request), import_id)
        template = (
            "contacts/_import_progress.html" if is_htmx(request) else "contacts/import_status.html"
        )
        return render(request, template, job=job)
