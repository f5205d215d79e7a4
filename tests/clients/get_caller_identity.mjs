// GetCallerIdentity with credentials from `fromProcess` (the profile's credential_process),
// the endpoint from AWS_ENDPOINT_URL. Prints the identity as JSON.
import { STSClient, GetCallerIdentityCommand } from "@aws-sdk/client-sts";
import { fromProcess } from "@aws-sdk/credential-providers";

const profile = process.argv[2];
const client = new STSClient({ region: "us-east-1", credentials: fromProcess({ profile }) });
const out = await client.send(new GetCallerIdentityCommand({}));
console.log(JSON.stringify({ Account: out.Account, Arn: out.Arn, UserId: out.UserId }));
