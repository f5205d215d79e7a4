//! The IAM side of the strict fake, for MFA device enrolment: CreateVirtualMFADevice (the
//! seed base64-encoded, as AWS sends it), EnableMFADevice and ResyncMFADevice (two
//! *consecutive* codes, the later one current), DeactivateMFADevice (only from an MFA
//! session), DeleteVirtualMFADevice (only once deactivated), ListMFADevices, and AWS's
//! limit of 8 MFA devices per user. Its user is `alice`, whom GetCallerIdentity names.

use std::collections::HashMap;
use std::fmt::Write as _;

use base64::Engine as _;

use super::{Handler, Reply, error, oathtool, unix_now};

pub const USER: &str = "alice";
/// The IAM actions this fake answers; every other action is STS's.
pub const ACTIONS: &[&str] = &[
    "CreateVirtualMFADevice",
    "EnableMFADevice",
    "ResyncMFADevice",
    "DeactivateMFADevice",
    "DeleteVirtualMFADevice",
    "ListMFADevices",
    "ListAccessKeys",
    "CreateAccessKey",
    "DeleteAccessKey",
];
/// The most MFA devices AWS lets one user have.
const MAX_DEVICES: usize = 8;
const XMLNS: &str = "https://iam.amazonaws.com/doc/2010-05-08/";

/// A virtual MFA device the fake created.
#[derive(Debug, Clone)]
pub struct Device {
    /// Base32, as IAM holds it.
    pub seed: String,
    /// When it was enabled for `alice`, if it is.
    pub enabled_at: Option<u64>,
}

/// Whether `action` is the one to refuse next (which then goes ahead the time after).
fn refused(state: &mut super::State, action: &str) -> bool {
    let refuse = state.refuse_iam == Some(action);
    if refuse {
        state.refuse_iam = None;
    }
    refuse
}

impl Handler {
    pub(super) fn iam(
        &self,
        action: &str,
        form: &HashMap<String, String>,
        by_session: bool,
    ) -> Option<Reply> {
        Some(match action {
            "CreateVirtualMFADevice" => self.create_device(form),
            "EnableMFADevice" => self.sync_device(form, true),
            "ResyncMFADevice" => self.sync_device(form, false),
            "DeactivateMFADevice" => self.deactivate(form, by_session),
            "DeleteVirtualMFADevice" => self.delete_device(form),
            "ListMFADevices" => self.list_devices(form),
            "ListAccessKeys" | "CreateAccessKey" | "DeleteAccessKey" => {
                self.access_keys(action, form, by_session)
            }
            _ => return None,
        })
    }

    fn create_device(&self, form: &HashMap<String, String>) -> Reply {
        let Some(name) = form.get("VirtualMFADeviceName") else {
            return error(
                400,
                "Sender",
                "ValidationError",
                "VirtualMFADeviceName is required",
            );
        };
        let serial = format!("arn:aws:iam::123456789012:mfa/{name}");
        let mut state = self.state.lock().unwrap();
        if refused(&mut state, "CreateVirtualMFADevice") {
            return error(
                403,
                "Sender",
                "AccessDenied",
                "User: arn:aws:iam::123456789012:user/alice is not authorized to perform: iam:CreateVirtualMFADevice",
            );
        }
        if serial == super::super::SERIAL || state.devices.contains_key(&serial) {
            return error(
                409,
                "Sender",
                "EntityAlreadyExists",
                "MFADevice entity at the same path and name already exists.",
            );
        }
        // The user's fixed device counts, as every device created for it does.
        if state.devices.len() + 1 >= MAX_DEVICES {
            return error(
                409,
                "Sender",
                "LimitExceeded",
                "Cannot exceed quota for UsersPerMFADevice: 8",
            );
        }
        let bytes: [u8; 20] = mfa_agent::random::bytes();
        let seed =
            mfa_agent::otp::encode_base32(&mfa_agent::secret::SecretBytes::new(bytes.to_vec()))
                .expose()
                .to_owned();
        let encoded = base64::engine::general_purpose::STANDARD.encode(&seed);
        state.devices.insert(
            serial.clone(),
            Device {
                seed,
                enabled_at: None,
            },
        );
        Reply {
            status: 200,
            body: format!(
                "<CreateVirtualMFADeviceResponse xmlns=\"{XMLNS}\"><CreateVirtualMFADeviceResult><VirtualMFADevice><SerialNumber>{serial}</SerialNumber><Base32StringSeed>{encoded}</Base32StringSeed></VirtualMFADevice></CreateVirtualMFADeviceResult><ResponseMetadata><RequestId>fake-iam</RequestId></ResponseMetadata></CreateVirtualMFADeviceResponse>"
            ),
        }
    }

    /// Enable (`enable`) or resync: the user, the device, and two consecutive codes whose
    /// later one is of the current window or the one before (a request in flight).
    fn sync_device(&self, form: &HashMap<String, String>, enable: bool) -> Reply {
        let action = if enable {
            "EnableMFADevice"
        } else {
            "ResyncMFADevice"
        };
        let get = |k: &str| form.get(k).cloned().unwrap_or_default();
        let (user, serial) = (get("UserName"), get("SerialNumber"));
        let mut state = self.state.lock().unwrap();
        if user != USER {
            return error(
                404,
                "Sender",
                "NoSuchEntity",
                &format!("The user with name {user} cannot be found."),
            );
        }
        if refused(&mut state, action) {
            return error(
                403,
                "Sender",
                "InvalidAuthenticationCode",
                "Authentication code for device is not valid.",
            );
        }
        let Some(device) = state.devices.get(&serial).cloned() else {
            return error(
                404,
                "Sender",
                "NoSuchEntity",
                &format!("MFA Device with serial number {serial} does not exist."),
            );
        };
        if enable == device.enabled_at.is_some() {
            let message = if enable {
                "MFA Device is already in use."
            } else {
                "MFA Device is not enabled."
            };
            return error(409, "Sender", "EntityAlreadyExists", message);
        }
        let (first, second) = (get("AuthenticationCode1"), get("AuthenticationCode2"));
        let step_now = unix_now() / self.period;
        let good = [step_now, step_now - 1].into_iter().find(|&step| {
            oathtool(&device.seed, step * self.period, self.period) == second
                && oathtool(&device.seed, (step - 1) * self.period, self.period) == first
        });
        state.iam_codes.push((first, second));
        let Some(step) = good else {
            return error(
                403,
                "Sender",
                "InvalidAuthenticationCode",
                "Authentication code for device is not valid.",
            );
        };
        // Both codes are spent: a GetSessionToken must come with a later one.
        state.used_steps.insert(serial.clone(), step);
        if enable {
            state.devices.get_mut(&serial).unwrap().enabled_at = Some(unix_now());
        }
        Reply {
            status: 200,
            body: format!(
                "<{action}Response xmlns=\"{XMLNS}\"><ResponseMetadata><RequestId>fake-iam</RequestId></ResponseMetadata></{action}Response>"
            ),
        }
    }

    fn deactivate(&self, form: &HashMap<String, String>, by_session: bool) -> Reply {
        // The Force-MFA policy: deactivating needs an MFA session.
        if !by_session {
            return error(
                403,
                "Sender",
                "AccessDenied",
                "User: arn:aws:iam::123456789012:user/alice is not authorized to perform: iam:DeactivateMFADevice with an explicit deny (aws:MultiFactorAuthPresent is false)",
            );
        }
        let serial = form.get("SerialNumber").cloned().unwrap_or_default();
        let mut state = self.state.lock().unwrap();
        match state.devices.get_mut(&serial) {
            Some(device) if device.enabled_at.is_some() => device.enabled_at = None,
            _ => {
                return error(
                    404,
                    "Sender",
                    "NoSuchEntity",
                    &format!("MFA Device with serial number {serial} is not enabled."),
                );
            }
        }
        Reply {
            status: 200,
            body: format!(
                "<DeactivateMFADeviceResponse xmlns=\"{XMLNS}\"><ResponseMetadata><RequestId>fake-iam</RequestId></ResponseMetadata></DeactivateMFADeviceResponse>"
            ),
        }
    }

    fn delete_device(&self, form: &HashMap<String, String>) -> Reply {
        let serial = form.get("SerialNumber").cloned().unwrap_or_default();
        let mut state = self.state.lock().unwrap();
        match state.devices.get(&serial) {
            None => {
                return error(
                    404,
                    "Sender",
                    "NoSuchEntity",
                    &format!("VirtualMFADevice with serial {serial} does not exist."),
                );
            }
            Some(device) if device.enabled_at.is_some() => {
                return error(
                    409,
                    "Sender",
                    "DeleteConflict",
                    "MFA device is still in use.",
                );
            }
            Some(_) => state.devices.remove(&serial),
        };
        Reply {
            status: 200,
            body: format!(
                "<DeleteVirtualMFADeviceResponse xmlns=\"{XMLNS}\"><ResponseMetadata><RequestId>fake-iam</RequestId></ResponseMetadata></DeleteVirtualMFADeviceResponse>"
            ),
        }
    }

    /// The user's own access keys, managed only from an MFA session (the Force-MFA policy
    /// denies it otherwise); at most two.
    fn access_keys(&self, action: &str, form: &HashMap<String, String>, by_session: bool) -> Reply {
        if !by_session {
            return error(
                403,
                "Sender",
                "AccessDenied",
                &format!(
                    "User: arn:aws:iam::123456789012:user/alice is not authorized to perform: iam:{action} with an explicit deny (aws:MultiFactorAuthPresent is false)"
                ),
            );
        }
        let user = form.get("UserName").cloned().unwrap_or_default();
        if user != USER {
            return error(
                404,
                "Sender",
                "NoSuchEntity",
                &format!("The user with name {user} cannot be found."),
            );
        }
        let mut state = self.state.lock().unwrap();
        if refused(&mut state, action) {
            return error(500, "Receiver", "ServiceFailure", "injected failure");
        }
        let existing: Vec<String> = std::iter::once(super::ACCESS_KEY_ID.to_owned())
            .chain(state.access_keys.keys().cloned())
            .filter(|k| !state.deleted_keys.contains(k))
            .collect();
        let body = match action {
            "ListAccessKeys" => {
                let members = existing.iter().fold(String::new(), |mut out, id| {
                    let _ = write!(out, "<member><UserName>{USER}</UserName><AccessKeyId>{id}</AccessKeyId><Status>Active</Status></member>");
                    out
                });
                format!(
                    "<ListAccessKeysResult><AccessKeyMetadata>{members}</AccessKeyMetadata><IsTruncated>false</IsTruncated></ListAccessKeysResult>"
                )
            }
            "CreateAccessKey" => {
                if existing.len() >= 2 {
                    return error(
                        409,
                        "Sender",
                        "LimitExceeded",
                        "Cannot exceed quota for AccessKeysPerUser: 2",
                    );
                }
                let n = state.access_keys.len() + 1;
                let id = format!("AKIAFAKEROTATED{n:05}");
                let secret = format!("rotatedSecretAccessKey{n:018}");
                let from = unix_now() + state.new_key_delay;
                state.access_keys.insert(id.clone(), (secret.clone(), from));
                format!(
                    "<CreateAccessKeyResult><AccessKey><UserName>{USER}</UserName><AccessKeyId>{id}</AccessKeyId><Status>Active</Status><SecretAccessKey>{secret}</SecretAccessKey></AccessKey></CreateAccessKeyResult>"
                )
            }
            _ => {
                let id = form.get("AccessKeyId").cloned().unwrap_or_default();
                if !existing.contains(&id) {
                    return error(
                        404,
                        "Sender",
                        "NoSuchEntity",
                        &format!("The Access Key with id {id} cannot be found."),
                    );
                }
                state.deleted_keys.push(id);
                String::new()
            }
        };
        Reply {
            status: 200,
            body: format!(
                "<{action}Response xmlns=\"{XMLNS}\">{body}<ResponseMetadata><RequestId>fake-iam</RequestId></ResponseMetadata></{action}Response>"
            ),
        }
    }

    fn list_devices(&self, form: &HashMap<String, String>) -> Reply {
        let user = form.get("UserName").cloned().unwrap_or_default();
        if user != USER {
            return error(
                404,
                "Sender",
                "NoSuchEntity",
                &format!("The user with name {user} cannot be found."),
            );
        }
        let state = self.state.lock().unwrap();
        let date = |at: u64| {
            aws_sdk_sts::primitives::DateTime::from_secs(i64::try_from(at).unwrap())
                .fmt(aws_sdk_sts::primitives::DateTimeFormat::DateTime)
                .unwrap()
        };
        let member = |serial: &str, at: u64| {
            format!(
                "<member><UserName>{USER}</UserName><SerialNumber>{serial}</SerialNumber><EnableDate>{}</EnableDate></member>",
                date(at)
            )
        };
        let mut members = member(super::super::SERIAL, 1_700_000_000);
        for (serial, device) in &state.devices {
            if let Some(at) = device.enabled_at {
                members.push_str(&member(serial, at));
            }
        }
        Reply {
            status: 200,
            body: format!(
                "<ListMFADevicesResponse xmlns=\"{XMLNS}\"><ListMFADevicesResult><MFADevices>{members}</MFADevices><IsTruncated>false</IsTruncated></ListMFADevicesResult><ResponseMetadata><RequestId>fake-iam</RequestId></ResponseMetadata></ListMFADevicesResponse>"
            ),
        }
    }
}
