"""End-to-end checks of jobline's Zuora dialect with the real zuora-sdk 3.21.0.

Run by e2e/zuora/run.sh, which starts `jobline serve` and sets JOBLINE_URL, ZUORA_CLIENT_ID
and ZUORA_CLIENT_SECRET. Each check prints PASS or FAIL; the last line is `N passed, M failed`
and the exit status is non-zero if anything failed.
"""

import os
import sys
import time
import traceback

import zuora_sdk
from zuora_sdk import Configuration
from zuora_sdk.zuora_client import ZuoraClient
from zuora_sdk.models import CustomObjectBulkJobRequest, PostCustomObjectDefinitionsRequest

URL = os.environ["JOBLINE_URL"]
CLIENT_ID = os.environ["ZUORA_CLIENT_ID"]
CLIENT_SECRET = os.environ["ZUORA_CLIENT_SECRET"]

results = []


def check(name):
    def wrap(fn):
        try:
            fn()
            results.append((name, True))
            print(f"PASS {name}")
        except Exception:  # noqa: BLE001 - every failure is reported, then counted
            results.append((name, False))
            print(f"FAIL {name}")
            traceback.print_exc()
        return fn

    return wrap


def expect(cond, what):
    if not cond:
        raise AssertionError(what)


client = ZuoraClient(CLIENT_ID, CLIENT_SECRET, None, Configuration(host=URL))
# refresh_token() authenticates once; initialize() would leave a refresh thread behind.
client.refresh_token()
jobs = client.custom_object_jobs_api()
definitions = client.custom_object_definitions_api()
records = client.custom_object_records_api()
state = {}


@check("token is issued and lasts about an hour")
def _():
    expect(client.token["access_token"], "no access token")
    left = (client.token["expires_at"] - __import__("datetime").datetime.now()).total_seconds()
    expect(3000 < left <= 3600, f"token lifetime {left}")


@check("a definition is created and read back")
def _():
    body = PostCustomObjectDefinitionsRequest.from_dict({"definitions": {"vehicle": {
        "object": "vehicle", "label": "Vehicle", "type": "object",
        "properties": {
            "vin__c": {"type": "string", "label": "VIN", "maxLength": 17},
            "year__c": {"type": "integer", "label": "Year"}},
        "required": ["vin__c"], "filterable": ["vin__c", "year__c"], "unique": ["vin__c"],
        "enableCreateRecordAuditing": False, "enableDeleteRecordAuditing": False}}})
    created = definitions.post_custom_object_definitions(body)
    expect(created is not None, "no answer (status other than 200?)")
    one = definitions.get_custom_object_definition_by_type("vehicle")
    expect(one.type == "vehicle", f"type {one.type}")


@check("a bulk create job runs from upload to completed")
def _():
    req = CustomObjectBulkJobRequest.from_dict(
        {"namespace": "default", "object": "vehicle", "operation": "create"})
    job = jobs.post_custom_object_bulk_job(req)
    expect(job.status == "pending", f"status {job.status}")
    expect(isinstance(job.id, str) and len(job.id) == 36, f"Id {job.id}")
    expect(str(job.created_date).endswith("Z"), f"CreatedDate {job.created_date}")
    csv = "vin__c,year__c\nV1,2001\nV2,not-a-year\nV3,2003\n"
    up = jobs.post_upload_file_for_custom_object_bulk_job("text/csv", job.id, csv)
    expect(up.status in ("accepted", "in_progress", "completed"), f"upload status {up.status}")
    deadline = time.time() + 30
    while True:
        got = jobs.get_custom_object_bulk_job(job.id)
        if got.status in ("completed", "failed", "cancelled"):
            break
        expect(time.time() < deadline, "job did not finish in 30 s")
        time.sleep(0.2)
    expect(got.status == "completed", f"final status {got.status}")
    expect(got.records_processed == 3, f"recordsProcessed {got.records_processed}")
    expect(isinstance(got.processing_time, int), f"processingTime {got.processing_time}")
    state["job"] = job.id


@check("job errors name the bad row")
def _():
    errors = jobs.get_custom_object_bulk_job_errors(state["job"]).errors
    expect(len(errors) == 1, f"{len(errors)} errors")
    expect(errors[0].row == 3 and isinstance(errors[0].code, int), f"{errors[0]}")


@check("records written by the job are listed")
def _():
    got = records.get_all_records_for_custom_object_type("vehicle")
    expect(got.count == 2, f"count {got.count}")


@check("jobs are listed newest first with a cursor")
def _():
    for _ in range(2):
        jobs.post_custom_object_bulk_job(CustomObjectBulkJobRequest.from_dict(
            {"namespace": "default", "object": "vehicle", "operation": "update"}))
    page1 = jobs.get_all_custom_object_bulk_jobs(page_size=2)
    expect(page1.count == 2 and page1.cursor, f"page 1 {page1}")
    page2 = jobs.get_all_custom_object_bulk_jobs(page_size=2, cursor=page1.cursor)
    expect(page2.count == 1 and page2.cursor is None, f"page 2 {page2}")
    expect(page2.jobs[0].id == state["job"], "oldest job last")


@check("a pending job is cancelled, a completed one refused with 400")
def _():
    pending = jobs.get_all_custom_object_bulk_jobs(status="pending").jobs[0]
    cancelled = jobs.p_atch_custom_object_bulk_job(pending.id)
    expect(cancelled.status == "cancelled", f"status {cancelled.status}")
    try:
        jobs.p_atch_custom_object_bulk_job(state["job"])
        raise AssertionError("cancel of a completed job succeeded")
    except zuora_sdk.exceptions.BadRequestException as e:
        expect(e.data.code == 71013630, f"code {e.data.code}")


@check("Zuora-Track-Id is echoed and Zuora-Request-Id generated")
def _():
    r = jobs.get_custom_object_bulk_job_with_http_info(state["job"], zuora_track_id="e2e-track-1")
    expect(r.status_code == 200, f"status {r.status_code}")
    headers = {k.lower(): v for k, v in r.headers.items()}
    expect(headers.get("zuora-track-id") == "e2e-track-1", f"headers {headers}")
    expect(len(headers.get("zuora-request-id", "")) == 36, "request id")


@check("an unknown job is a NotFoundException with Zuora's code")
def _():
    try:
        jobs.get_custom_object_bulk_job("00000000-0000-0000-0000-000000000000")
        raise AssertionError("found a job that does not exist")
    except zuora_sdk.exceptions.NotFoundException as e:
        expect(e.data.code == 71013040, f"code {e.data.code}")


passed = sum(1 for _, ok in results if ok)
failed = len(results) - passed
print(f"{passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
