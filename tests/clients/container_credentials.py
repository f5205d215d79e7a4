"""Run by `mfa-agent exec --server`: checks what the child is given, then calls
GetCallerIdentity through boto3's own container-credentials provider. Prints JSON."""
import json
import os
import sys
import urllib.error
import urllib.request

import boto3

uri = os.environ["AWS_CONTAINER_CREDENTIALS_FULL_URI"]
report = {
    "uri": uri,
    "static_keys": [k for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN") if k in os.environ],
}
# Without the token, and with a wrong one: refused.
for token in (None, "wrong"):
    request = urllib.request.Request(uri, headers={"Authorization": token} if token else {})
    try:
        urllib.request.urlopen(request, timeout=10)
        report.setdefault("unauthorized", []).append(200)
    except urllib.error.HTTPError as e:
        report.setdefault("unauthorized", []).append(e.code)
identity = boto3.Session().client("sts", region_name="us-east-1").get_caller_identity()
report["arn"] = identity["Arn"]
print(json.dumps(report))
sys.exit(int(sys.argv[1]))
