"""Seeds one record of each kind through the API and writes a schemathesis config that names
them as path parameters, so the fuzzer reaches the handlers' logic instead of a 404 on every
operation whose path names a record.

Usage: seed.py BASE_URL TOKEN CONFIG_OUT. Every call must succeed; the first that does not
stops the run with its answer.
"""

import json
import sys
import urllib.request

BASE, TOKEN, OUT = sys.argv[1], sys.argv[2], sys.argv[3]


def call(method, path, body=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(BASE + path, data=data, method=method)
    req.add_header("Authorization", f"Bearer {TOKEN}")
    if data is not None:
        req.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(req) as r:
        text = r.read()
        return json.loads(text) if text else None


def create(path, kind, attributes):
    doc = call("POST", path, {"data": {"type": kind, "attributes": attributes}})
    return doc["data"]["id"]


product = create("/pcm/products", "product", {
    "name": "Shirt", "slug": "shirt", "sku": "shirt", "status": "live",
    "commodity_type": "physical"})
hierarchy = create("/pcm/hierarchies", "hierarchy", {"name": "Clothes"})
node = create(f"/pcm/hierarchies/{hierarchy}/nodes", "node", {"name": "Shirts"})
variation = create("/pcm/variations", "product-variation", {"name": "Size"})
option = create(f"/pcm/variations/{variation}/options", "product-variation-option",
                {"name": "Small", "description": "Small"})
book = create("/pcm/pricebooks", "pricebook", {"name": "Retail"})
price = create(f"/pcm/pricebooks/{book}/prices", "product-price",
               {"sku": "shirt", "currencies": {"USD": {"amount": 1000, "includes_tax": False}}})
pxm_job = call("POST", "/pcm/products/export", {})["data"]["id"]

promotion = call("POST", "/v2/promotions", {"data": {"type": "promotion", "name": "Sale"}})
promotion = promotion["data"]["id"]
call("POST", f"/v2/promotions/{promotion}/codes",
     {"data": {"type": "promotion_codes", "codes": [{"code": "alpha"}]}})
promo_job = call("POST", f"/v2/promotions/{promotion}/jobs", {"data": {
    "type": "promotion_job", "job_type": "code_export", "name": "export"}})["data"]["id"]

call("POST", "/objects/definitions/default", {"definitions": {"vehicle": {
    "object": "vehicle", "label": "Vehicle", "type": "object",
    "properties": {"vin__c": {"type": "string", "label": "VIN", "maxLength": 17},
                   "year__c": {"type": "integer", "label": "Year"}},
    "required": ["vin__c"], "filterable": ["vin__c", "year__c"], "unique": ["vin__c"]}}})
record = call("POST", "/objects/records/default/vehicle",
              {"records": [{"vin__c": "V1", "year__c": 2020}]})
record = record["records"][0]["Id"]
zuora_job = call("POST", "/objects/jobs",
                 {"namespace": "default", "object": "vehicle", "operation": "create"})["Id"]

# One [[operations]] table per path prefix whose `{id}` means a different record.
rules = [
    (r"^/pcm/products/\{id\}", {"id": product}),
    (r"^/pcm/hierarchies/\{id\}", {"id": hierarchy, "node": node}),
    (r"^/pcm/variations/\{id\}", {"id": variation, "option": option}),
    (r"^/pcm/pricebooks/\{id\}", {"id": book, "price": price}),
    (r"^/pcm/jobs/\{id\}", {"id": pxm_job}),
    (r"^/v2/(rule-)?promotions/\{id\}", {"id": promotion, "job": promo_job, "code": "alpha"}),
    (r"^/objects/definitions/default/\{object\}", {"object": "vehicle"}),
    (r"^/objects/records/default/\{object\}", {"object": "vehicle", "id": record}),
    (r"^/objects/jobs/\{id\}", {"id": zuora_job}),
    (r"^/v1/jobs/\{id\}", {"id": pxm_job}),
]
with open(OUT, "w") as f:
    for regex, params in rules:
        f.write("[[operations]]\n")
        f.write(f"include-path-regex = {json.dumps(regex)}\n")
        values = ", ".join(f'"path.{k}" = {json.dumps(v)}' for k, v in params.items())
        f.write(f"parameters = {{ {values} }}\n\n")
print(f"openapi e2e: seeded records, config in {OUT}")
