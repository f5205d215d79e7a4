"""GetCallerIdentity through boto3's own credential_process support; prints the identity."""
import json
import sys

import boto3

session = boto3.Session(profile_name=sys.argv[1])
# The endpoint comes from AWS_ENDPOINT_URL, which botocore honours.
identity = session.client("sts", region_name="us-east-1").get_caller_identity()
identity.pop("ResponseMetadata", None)
print(json.dumps(identity))
