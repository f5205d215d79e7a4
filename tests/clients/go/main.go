// A real AWS SDK for Go v2 client for mfa-agent's tests (the SDK inside Terraform's AWS
// provider), built offline from Debian's golang-github-aws-aws-sdk-go-v2-dev by tests/run.
//
//	go-aws-client identity PROFILE ENDPOINT
//	    GetCallerIdentity with the profile's credentials (its credential_process, through
//	    the SDK's shared-config chain); prints the identity and the access key used as JSON.
//	go-aws-client loop SECONDS ENDPOINT
//	    Run by `mfa-agent exec --server`: GetCallerIdentity once a second for SECONDS through
//	    the SDK's default chain (container credentials, from the local endpoint), across the
//	    expiry of the sessions it is served. Prints JSON: calls, failures, access keys used.
//
// Debian's SDK (1.17) predates AWS_ENDPOINT_URL, so the STS endpoint is an argument.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/sts"
)

func main() {
	if len(os.Args) != 4 {
		fail(fmt.Errorf("usage: go-aws-client identity PROFILE ENDPOINT | loop SECONDS ENDPOINT"))
	}
	var err error
	switch os.Args[1] {
	case "identity":
		err = identity(os.Args[2], os.Args[3])
	case "loop":
		err = loop(os.Args[2], os.Args[3])
	default:
		err = fmt.Errorf("unknown mode %q", os.Args[1])
	}
	if err != nil {
		fail(err)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "go-aws-client:", err)
	os.Exit(1)
}

func client(cfg aws.Config, endpoint string) *sts.Client {
	return sts.NewFromConfig(cfg, sts.WithEndpointResolver(sts.EndpointResolverFromURL(endpoint)))
}

func identity(profile, endpoint string) error {
	ctx := context.Background()
	cfg, err := config.LoadDefaultConfig(ctx, config.WithSharedConfigProfile(profile))
	if err != nil {
		return err
	}
	out, err := client(cfg, endpoint).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil {
		return err
	}
	creds, err := cfg.Credentials.Retrieve(ctx)
	if err != nil {
		return err
	}
	return json.NewEncoder(os.Stdout).Encode(map[string]string{
		"Account":     aws.ToString(out.Account),
		"Arn":         aws.ToString(out.Arn),
		"UserId":      aws.ToString(out.UserId),
		"AccessKeyId": creds.AccessKeyID,
		"Source":      creds.Source,
	})
}

func loop(seconds, endpoint string) error {
	n, err := strconv.Atoi(seconds)
	if err != nil {
		return err
	}
	ctx := context.Background()
	cfg, err := config.LoadDefaultConfig(ctx, config.WithRegion("us-east-1"))
	if err != nil {
		return err
	}
	svc := client(cfg, endpoint)
	report := struct {
		Calls    int      `json:"calls"`
		Failures []string `json:"failures"`
		Keys     []string `json:"keys"`
		Source   string   `json:"source"`
	}{Failures: []string{}, Keys: []string{}}
	for deadline := time.Now().Add(time.Duration(n) * time.Second); time.Now().Before(deadline); {
		report.Calls++
		if _, err := svc.GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{}); err != nil {
			report.Failures = append(report.Failures, err.Error())
		} else if creds, err := cfg.Credentials.Retrieve(ctx); err != nil {
			report.Failures = append(report.Failures, err.Error())
		} else {
			report.Source = creds.Source
			if !contains(report.Keys, creds.AccessKeyID) {
				report.Keys = append(report.Keys, creds.AccessKeyID)
			}
		}
		time.Sleep(time.Second)
	}
	return json.NewEncoder(os.Stdout).Encode(report)
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
