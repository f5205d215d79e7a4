// Run by `mfa-agent exec --server`: GetCallerIdentity once a second for SECONDS through the
// SDK's default provider chain (container credentials, from the local endpoint), across
// the expiry of the sessions it is served. Prints JSON: calls, failures, access keys used.
import { STSClient, GetCallerIdentityCommand } from "@aws-sdk/client-sts";

const seconds = Number(process.argv[2]);
const client = new STSClient({ region: "us-east-1" });
const report = { calls: 0, failures: [], keys: [] };
const deadline = Date.now() + seconds * 1000;
while (Date.now() < deadline) {
  try {
    await client.send(new GetCallerIdentityCommand({}));
    const { accessKeyId } = await client.config.credentials();
    if (!report.keys.includes(accessKeyId)) report.keys.push(accessKeyId);
  } catch (e) {
    report.failures.push(String(e));
  }
  report.calls += 1;
  await new Promise((resolve) => setTimeout(resolve, 1000));
}
console.log(JSON.stringify(report));
