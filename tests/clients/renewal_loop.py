"""Run by `mfa-agent exec --server`: calls GetCallerIdentity once a second for SECONDS
through boto3's container-credentials provider, across the expiry of the sessions it is
served. Prints JSON: calls, failures (with their errors), and the access keys it used."""
import json
import sys
import time

import boto3

seconds = float(sys.argv[1])
session = boto3.Session()
client = session.client("sts", region_name="us-east-1")
report = {"calls": 0, "failures": [], "keys": []}
deadline = time.time() + seconds
while time.time() < deadline:
    try:
        client.get_caller_identity()
        key = session.get_credentials().get_frozen_credentials().access_key
        if key not in report["keys"]:
            report["keys"].append(key)
    except Exception as e:  # every failure is what the test looks for
        report["failures"].append(repr(e))
    report["calls"] += 1
    time.sleep(1)
print(json.dumps(report))
