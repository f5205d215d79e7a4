//! Finding FIDO devices and reading what they can do (CTAP2 getInfo).

use std::time::Duration;

use super::{KeyError, lib_config, run_exclusive};
use crate::protocol::{Capability, KeyDevice, PinState};
use ctap_hid_fido2::{FidoKeyHid, HidParam};

/// How long one device gets to answer getInfo.
const INFO_DEADLINE: Duration = Duration::from_secs(5);

/// Lists FIDO devices (HID usage page 0xF1D0) and asks each for its capabilities.
pub fn list() -> Result<Vec<KeyDevice>, KeyError> {
    let found = run_exclusive(INFO_DEADLINE, || {
        // ctap-hid-fido2 panics if HID cannot be initialised: try it ourselves first.
        hidapi::HidApi::new().map_err(|e| KeyError::HidUnavailable {
            detail: e.to_string(),
        })?;
        Ok(ctap_hid_fido2::get_fidokey_devices())
    })?;
    let mut devices = Vec::with_capacity(found.len());
    for info in found {
        let path = match &info.param {
            HidParam::Path(p) => p.clone(),
            HidParam::VidPid { vid, pid } => format!("{vid:04x}:{pid:04x}"),
        };
        let mut device = KeyDevice {
            path: path.clone(),
            vendor_id: info.vid,
            product_id: info.pid,
            product: info.product_string.clone(),
            versions: Vec::new(),
            extensions: Vec::new(),
            pin: PinState::Unsupported,
            pin_retries: None,
            pin_protocols: Vec::new(),
            capability: Capability::Unknown,
            error: None,
            enrolled_as: None,
        };
        if let Err(e) = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
        {
            device.error = Some(format!(
                "cannot open {path} ({e}); install the udev rule from the README, then replug the key"
            ));
            devices.push(device);
            continue;
        }
        let param = info.param.clone();
        match run_exclusive(INFO_DEADLINE, move || {
            let key = FidoKeyHid::new(&[param], &lib_config())
                .map_err(|e| KeyError::Device(e.to_string()))?;
            let info = key
                .get_info()
                .map_err(|e| KeyError::Device(e.to_string()))?;
            let retries = (pin_state(&info.options) == PinState::Set)
                .then(|| key.get_pin_retries().ok())
                .flatten()
                .and_then(|n| u32::try_from(n).ok());
            Ok((info, retries))
        }) {
            Ok((info, retries)) => {
                device.pin = pin_state(&info.options);
                device.pin_retries = retries;
                let mut protocols = info.pin_uv_auth_protocols.clone();
                // Protocol 2 first: it is the stronger one, and some keys speak only it.
                protocols.sort_by_key(|p| std::cmp::Reverse(*p));
                device.pin_protocols = protocols;
                device.capability = if info.versions.iter().any(|v| v.starts_with("FIDO_2")) {
                    Capability::SealAndApprove
                } else {
                    Capability::ApproveOnly
                };
                device.versions = info.versions;
                device.extensions = info.extensions;
            }
            // No CTAP2 answer: a U2F-only key, if it answers U2F.
            Err(_) if super::ctap1::speaks_u2f(&path) => {
                device.capability = Capability::ApproveOnly;
                device.versions = vec!["U2F_V2".into()];
            }
            Err(e) => {
                device.error = Some(format!("the key answers neither CTAP2 nor U2F ({e})"));
            }
        }
        devices.push(device);
    }
    Ok(devices)
}

/// Whether the key has a PIN, from getInfo's `clientPin` option (absent: no PIN support).
fn pin_state(options: &[(String, bool)]) -> PinState {
    match options.iter().find(|(name, _)| name == "clientPin") {
        Some((_, true)) => PinState::Set,
        Some((_, false)) => PinState::NotSet,
        None => PinState::Unsupported,
    }
}
