//! The strict fake STS refuses what AWS refuses, so that a product that signs or asks wrongly
//! fails against it as it would against AWS: a signature scoped to the wrong service or
//! date, `host` left unsigned, a clock more than 5 minutes off, an API version of the
//! other service, an AssumeRole without a session name or longer than the role allows.
//! Each refusal is checked next to the same request made right, which is accepted.

use crate::common;

use common::AWS_SEED;
use common::fake_sts::{FakeSts, Fault, Signing};

const IDENTITY: &str = "Action=GetCallerIdentity&Version=2011-06-15";
const IAM_DEVICES: &str = "Action=ListMFADevices&Version=2010-05-08&UserName=alice";
const ROLE: &str = "arn:aws:iam::210987654321:role/Admin";

fn refused(sts: &FakeSts, body: &str, signing: &Signing, code: &str) {
    let (status, answer) = sts.call_signed(body, signing);
    assert!(
        (400..500).contains(&status) && answer.contains(code),
        "{body} signed {signing:?}: expected {code}, got {status}: {answer}"
    );
}

fn accepted(sts: &FakeSts, body: &str, signing: &Signing) {
    let (status, answer) = sts.call_signed(body, signing);
    assert_eq!(status, 200, "{body} signed {signing:?}: {answer}");
}

#[test]
fn signatures_are_checked_for_service_date_and_host() {
    let sts = FakeSts::start(AWS_SEED, 30);
    let sts_signing = Signing::default();
    let iam_signing = Signing {
        service: "iam",
        ..Signing::default()
    };
    accepted(&sts, IDENTITY, &sts_signing);
    accepted(&sts, IAM_DEVICES, &iam_signing);

    // Each service answers only its own operations: a call sent to the other one fails.
    refused(&sts, IDENTITY, &iam_signing, "InvalidAction");
    refused(&sts, IAM_DEVICES, &sts_signing, "InvalidAction");
    refused(
        &sts,
        "Action=GetCallerIdentity&Version=2010-05-08",
        &sts_signing,
        "InvalidAction",
    );
    // STS is signed for the region of its endpoint, whichever that is.
    accepted(
        &sts,
        IDENTITY,
        &Signing {
            region: "eu-west-1",
            ..Signing::default()
        },
    );
    refused(
        &sts,
        IDENTITY,
        &Signing {
            sign_host: false,
            ..Signing::default()
        },
        "IncompleteSignature",
    );
    // Five minutes of clock skew either way, and not a second more.
    for (offset, answer) in [
        (-240, None),
        (240, None),
        (-600, Some("Signature expired")),
        (600, Some("Signature not yet current")),
    ] {
        let signing = Signing {
            clock_offset: offset,
            ..Signing::default()
        };
        match answer {
            None => accepted(&sts, IDENTITY, &signing),
            Some(code) => refused(&sts, IDENTITY, &signing, code),
        }
    }
}

#[test]
fn assume_role_needs_a_session_name_and_stays_within_the_roles_limit() {
    let sts = FakeSts::start(AWS_SEED, 30);
    let role = percent_encoding::utf8_percent_encode(ROLE, percent_encoding::NON_ALPHANUMERIC);
    let assume =
        |extra: &str| format!("Action=AssumeRole&Version=2011-06-15&RoleArn={role}{extra}");
    let signing = Signing::default();
    refused(
        &sts,
        &assume("&DurationSeconds=900"),
        &signing,
        "roleSessionName",
    );
    refused(
        &sts,
        &assume("&RoleSessionName=alice&DurationSeconds=7200"),
        &signing,
        "MaxSessionDuration",
    );
    // A role made for 2-hour sessions: the duration passes, and the request goes on to the
    // check that comes next (long-term keys assume this role only with MFA).
    sts.set_role_max_session(ROLE, 7200);
    refused(
        &sts,
        &assume("&RoleSessionName=alice&DurationSeconds=7200"),
        &signing,
        "MultiFactorAuthentication required",
    );
}

#[test]
fn an_injected_fault_hits_only_the_action_it_is_aimed_at() {
    let sts = FakeSts::start(AWS_SEED, 30);
    sts.inject("GetSessionToken", [Fault::Status(503)]);
    let signing = Signing::default();
    accepted(&sts, IDENTITY, &signing);
    let session = "Action=GetSessionToken&Version=2011-06-15";
    refused_with(&sts, session, 503, "InternalFailure");
    // Spent: the same call now meets the fake's own check (no MFA code).
    refused(
        &sts,
        session,
        &signing,
        "MultiFactorAuthentication required",
    );
}

fn refused_with(sts: &FakeSts, body: &str, status: u16, code: &str) {
    let (got, answer) = sts.call_signed(body, &Signing::default());
    assert!(got == status && answer.contains(code), "{got}: {answer}");
}
