#!/bin/sh
# Run by `mfa-agent exec --server`: the AWS CLI's GetCallerIdentity once a second for $1
# seconds against the endpoint $2, a new process each time (so each asks the local
# credentials endpoint), across the expiry of the sessions it is served. Prints JSON:
# calls, failures (the last error seen).
end=$(($(date +%s) + $1))
calls=0
failures=0
last=""
while [ "$(date +%s)" -lt "$end" ]; do
  if ! out=$(AWS_PAGER="" aws sts get-caller-identity --endpoint-url "$2" --output text 2>&1); then
    failures=$((failures + 1))
    last=$(printf %s "$out" | tr -d '"\\\n' | cut -c1-200)
  fi
  calls=$((calls + 1))
  sleep 1
done
printf '{"calls": %d, "failures": %d, "last_error": "%s"}\n' "$calls" "$failures" "$last"
