//! Seeds in the real Secret Service: adding from every source, listing, exporting, removing.

use crate::common;

use std::os::unix::fs::PermissionsExt;

use common::{AWS_SEED, SERIAL, TestEnv, oathtool};
use serde_json::Value;

const AWS_URI: &str = "otpauth://totp/Amazon%20Web%20Services:alice@123456789012?secret=ABCDEFGHIJKLMNOPQRSTUVWXYZ234567ABCDEFGHIJKLMNOPQRSTUVWXYZ234567&issuer=Amazon%20Web%20Services";

fn listed(env: &TestEnv) -> Value {
    serde_json::from_str(&env.run(["seed", "list", "--json"], "").success()).unwrap()
}

/// The code `mfa-agent code NAME --json` prints, checked against oathtool at the same instant.
fn assert_code_matches(
    env: &TestEnv,
    name: &str,
    secret: &str,
    algorithm: &str,
    digits: u8,
    period: u64,
) {
    for next in [false, true] {
        let mut args = vec!["code", name, "--json"];
        if next {
            args.push("--next");
        }
        let out: Value = serde_json::from_str(&env.run(args, "").success()).unwrap();
        let valid_from = out["valid_from"].as_u64().unwrap();
        assert_eq!(out["valid_until"].as_u64().unwrap() - valid_from, period);
        assert!(out["seconds_left"].as_u64().unwrap() <= if next { 2 * period } else { period });
        let code = out["code"].as_str().unwrap();
        assert_eq!(code.len(), usize::from(digits));
        assert_eq!(
            code,
            oathtool(secret, valid_from, algorithm, digits, period),
            "next={next}"
        );
    }
}

#[test]
fn base32_from_stdin_gives_the_same_codes_as_oathtool() {
    let env = TestEnv::with_keyring();
    // Pasted the way people do: lower case, grouped, padded.
    let pasted =
        "abcd efgh ijkl mnop qrst uvwx yz23 4567 abcd efgh ijkl mnop qrst uvwx yz23 4567 ====\n";
    let out = env.run(
        [
            "seed",
            "add",
            "work",
            "--secret",
            "-",
            "--serial",
            "arn:aws:iam::123456789012:mfa/alice",
        ],
        pasted,
    );
    out.success();
    assert!(
        out.stderr().contains("OS keyring (Secret Service)"),
        "says which store: {}",
        out.stderr()
    );
    assert_code_matches(&env, "work", AWS_SEED, "sha1", 6, 30);

    // The plain form prints only the code on stdout, so `$(mfa-agent code work)` works.
    let plain = env.run(["code", "work"], "");
    assert!(plain.success().trim().chars().all(|c| c.is_ascii_digit()));
    assert!(plain.stderr().contains("valid for"), "{}", plain.stderr());
}

#[test]
fn uri_from_stdin_keeps_labels_and_parameters() {
    let env = TestEnv::with_keyring();
    let secret = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQGEZA";
    let uri = format!(
        "otpauth://totp/Acme:bob?secret={secret}&issuer=Acme&algorithm=SHA256&digits=8&period=60"
    );
    env.run(["seed", "add", "acme", "--uri", "-"], &uri)
        .success();
    let seed = &listed(&env)["seeds"][0];
    assert_eq!(seed["name"], "acme");
    assert_eq!(seed["issuer"], "Acme");
    assert_eq!(seed["account"], "bob");
    assert_eq!(seed["algorithm"], "SHA256");
    assert_eq!(seed["digits"], 8);
    assert_eq!(seed["period"], 60);
    assert_code_matches(&env, "acme", secret, "sha256", 8, 60);
}

#[test]
fn uri_file_and_qr_image_from_an_independent_encoder() {
    let env = TestEnv::with_keyring();
    let uri_file = env.path().join("uri.txt");
    std::fs::write(&uri_file, format!("{AWS_URI}\n")).unwrap();
    env.run(
        [
            "seed",
            "add",
            "from-file",
            "--uri-file",
            uri_file.to_str().unwrap(),
        ],
        "",
    )
    .success();

    // qrencode (libqrencode) draws the code, as AWS's console would show it.
    let png = env.path().join("aws-qr.png");
    let status = std::process::Command::new("qrencode")
        .args(["-o", png.to_str().unwrap(), "-s", "6", AWS_URI])
        .status()
        .expect("qrencode is installed (tests/run installs it)");
    assert!(status.success());
    env.run(
        ["seed", "add", "from-qr", "--qr", png.to_str().unwrap()],
        "",
    )
    .success();

    let seeds = listed(&env);
    for seed in seeds["seeds"].as_array().unwrap() {
        assert_eq!(seed["issuer"], "Amazon Web Services");
        assert_eq!(seed["account"], "alice@123456789012");
    }
    assert_code_matches(&env, "from-file", AWS_SEED, "sha1", 6, 30);
    assert_code_matches(&env, "from-qr", AWS_SEED, "sha1", 6, 30);
}

#[test]
fn table_lists_everything_but_the_secret() {
    let env = TestEnv::with_keyring();
    env.add_seed("prod", &["--serial", "arn:aws:iam::123456789012:mfa/alice"]);
    let table = env.run(["seed", "list"], "").success();
    let lines: Vec<&str> = table.lines().collect();
    assert!(lines[0].starts_with("NAME"), "{table}");
    assert!(
        lines[1].starts_with("prod") && lines[1].contains("SHA1 6d/30s"),
        "{table}"
    );
    assert!(
        lines[1].contains("arn:aws:iam::123456789012:mfa/alice"),
        "{table}"
    );
    assert!(!table.contains(&AWS_SEED[..16]));
    assert_eq!(listed(&env)["store"], "keyring");
}

#[test]
fn export_as_uri_and_qr_restores_the_same_seed_elsewhere() {
    let env = TestEnv::with_keyring();
    env.add_seed("work", &[]);
    let exported = env.run(["seed", "export", "work", "--uri"], "");
    let uri = exported.success();
    assert!(
        exported.stderr().contains("warning:"),
        "export warns: {}",
        exported.stderr()
    );
    assert!(uri.starts_with("otpauth://totp/work?secret="), "{uri}");

    let qr = env.path().join("backup.png");
    env.run(["seed", "export", "work", "--qr", qr.to_str().unwrap()], "")
        .success();
    assert_eq!(
        std::fs::metadata(&qr).unwrap().permissions().mode() & 0o777,
        0o600
    );
    // zbarimg is an independent decoder: what a phone's scanner would read.
    let scanned = std::process::Command::new("zbarimg")
        .args(["--raw", "-q", qr.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&scanned.stdout).trim(), uri.trim());

    let phone = TestEnv::with_keyring();
    phone
        .run(["seed", "add", "restored", "--uri", "-"], &uri)
        .success();
    assert_code_matches(&phone, "restored", AWS_SEED, "sha1", 6, 30);
}

#[test]
fn remove_asks_first_and_then_deletes_from_the_keyring() {
    let env = TestEnv::with_keyring();
    env.add_seed("old", &[]);
    env.run(["seed", "remove", "old"], "")
        .failure(&["without confirmation", "--yes"]);
    assert_eq!(
        listed(&env)["seeds"].as_array().unwrap().len(),
        1,
        "nothing removed without consent"
    );

    env.run(["seed", "remove", "old", "--yes"], "").success();
    assert!(listed(&env)["seeds"].as_array().unwrap().is_empty());
    env.run(["code", "old"], "")
        .failure(&["no seed named \"old\"", "seed list"]);
    // The name is free again, and the new secret is the one used.
    let other = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";
    env.run(["seed", "add", "old", "--secret", "-"], other)
        .success();
    assert_code_matches(&env, "old", other, "sha1", 6, 30);
}

/// One seed per MFA device: a second one for the same serial is refused with the ways out
/// spelled out, `--replace` swaps in a re-created device's seed, `link` moves the link.
#[test]
fn a_second_seed_for_one_mfa_device_is_refused_with_the_choices() {
    let env = TestEnv::with_keyring();
    env.add_seed("old", &["--serial", SERIAL]);
    let new_secret = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP";
    env.run(
        ["seed", "add", "new", "--secret", "-", "--serial", SERIAL],
        new_secret,
    )
    .failure(&[
        "seed \"old\" is already linked to the MFA device arn:aws:iam::123456789012:mfa/alice",
        "nothing was added",
        "--replace",
        "mfa-agent seed link NAME --serial arn:aws:iam::123456789012:mfa/alice",
    ]);
    let names = |env: &TestEnv| -> Vec<(String, Value)> {
        listed(env)["seeds"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| (s["name"].as_str().unwrap().to_owned(), s["serial"].clone()))
            .collect()
    };
    assert_eq!(names(&env), vec![("old".into(), Value::from(SERIAL))]);

    // The device was re-created in AWS: its new seed replaces the old one.
    let out = env.run(
        [
            "seed",
            "add",
            "new",
            "--secret",
            "-",
            "--serial",
            SERIAL,
            "--replace",
        ],
        new_secret,
    );
    out.success();
    assert!(
        out.stderr().contains("replacing seed \"old\""),
        "{}",
        out.stderr()
    );
    assert_eq!(names(&env), vec![("new".into(), Value::from(SERIAL))]);
    assert_code_matches(&env, "new", new_secret, "SHA1", 6, 30);

    // A rename keeps the secret and the link.
    env.run(["seed", "rename", "new", "renewed"], "").success();
    assert_eq!(names(&env), vec![("renewed".into(), Value::from(SERIAL))]);
    assert_code_matches(&env, "renewed", new_secret, "SHA1", 6, 30);
    env.run(["seed", "rename", "renewed", "new"], "").success();

    // Moving the link to another seed unlinks the first.
    env.add_seed("other", &[]);
    env.run(["seed", "link", "other", "--serial", SERIAL], "")
        .success();
    assert_eq!(
        names(&env),
        vec![
            ("new".into(), Value::Null),
            ("other".into(), Value::from(SERIAL))
        ]
    );
}

/// A damaged seeds.json loses nothing for good: the error says so and names the fix, doctor
/// says "damaged" (not "no seed"), and `seed recover` restores the copy kept before the
/// last change.
#[test]
fn a_damaged_index_is_restored_by_seed_recover() {
    let env = TestEnv::with_keyring();
    env.add_seed("first", &[]);
    env.add_seed("second", &[]);
    let index = env.data_dir().join("seeds.json");
    std::fs::write(&index, "{\"version\": 1, \"seeds\": {\"fir").unwrap();

    env.run(["seed", "list"], "").failure(&[
        "seeds.json is damaged",
        "nothing was changed",
        "mfa-agent seed recover",
    ]);
    let doctor = env.run(["doctor"], "").stdout();
    assert!(doctor.contains("is damaged"), "{doctor}");

    let recovered = env.run(["seed", "recover"], "");
    recovered.success();
    assert!(
        recovered.stderr().contains("restored the seed index")
            && recovered.stderr().contains("1 seed(s)"),
        "{}",
        recovered.stderr()
    );
    // The copy from before "second" was added: "first" is back, and its secret with it.
    let names: Vec<String> = listed(&env)["seeds"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(names, ["first"]);
    assert_code_matches(&env, "first", AWS_SEED, "SHA1", 6, 30);
    let kept: Vec<_> = std::fs::read_dir(env.data_dir())
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.starts_with("seeds.json.damaged-"))
        .collect();
    assert_eq!(kept.len(), 1, "the damaged file is kept: {kept:?}");
    env.run(["seed", "recover"], "").success();
}

/// A Google Authenticator export link, encoded here independently of the product (the
/// protobuf wire format written out by hand in Python): `accounts` are (name, issuer,
/// base32 secret), TOTP, SHA1, 6 digits.
fn migration_link(accounts: &[(&str, &str, &str)]) -> String {
    let script = r#"
import base64, sys, urllib.parse
def varint(n):
    out = b""
    while True:
        b = n & 0x7f; n >>= 7
        if n: out += bytes([b | 0x80])
        else: return out + bytes([b])
def field(tag, data): return varint(tag << 3 | 2) + varint(len(data)) + data
def number(tag, n): return varint(tag << 3) + varint(n)
payload = b""
for line in sys.stdin.read().splitlines():
    parts = line.split("|")
    name, issuer, secret = parts[:3]
    kind = int(parts[3]) if len(parts) > 3 else 2  # 2 TOTP, 1 HOTP
    account = field(1, base64.b32decode(secret)) + field(2, name.encode()) + field(3, issuer.encode())
    account += number(4, 1) + number(5, 1) + number(6, kind)
    payload += field(1, account)
payload += number(2, 1) + number(3, 1)
print("otpauth-migration://offline?data=" + urllib.parse.quote(base64.b64encode(payload).decode(), safe=""))
"#;
    let input: Vec<String> = accounts
        .iter()
        .map(|(n, i, s)| format!("{n}|{i}|{s}"))
        .collect();
    let mut child = std::process::Command::new("python3")
        .args(["-c", script])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python3 runs");
    std::io::Write::write_all(child.stdin.as_mut().unwrap(), input.join("\n").as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// Google Authenticator exports only as "Transfer accounts" QR codes of migration links:
/// `seed import` takes them (as a link or its QR image) with every account, an older site's
/// 80-bit secret too (with a note), names each after it, never overwrites, and stores
/// nothing from a payload that does not decode.
#[test]
fn google_authenticator_exports_import_every_usable_account() {
    let github = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP";
    let old_site = "JBSWY3DPEHPK3PXP";
    let link = migration_link(&[
        (
            "Amazon Web Services:alice@123456789012",
            "Amazon Web Services",
            AWS_SEED,
        ),
        ("bob", "GitHub", github),
        ("carl", "Old Forum", old_site),
        // An HOTP account ("|1": its type) is skipped, and named with why.
        ("dave", "Bank", "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ|1"),
    ]);
    let env = TestEnv::with_keyring();
    let out = env.run(["seed", "import", "-"], &link);
    out.success();
    assert!(
        out.stderr().contains(
            "added alice@123456789012 (issuer Amazon Web Services, account alice@123456789012)"
        ) && out
            .stderr()
            .contains("added bob (issuer GitHub, account bob)")
            && out.stderr().contains(
                "added carl (issuer Old Forum, account carl) (note: its secret is only 80 bits"
            )
            && out
                .stderr()
                .contains("skipped account \"dave\" of the export is unusable: it is an HOTP"),
        "{}",
        out.stderr()
    );
    assert_code_matches(&env, "alice@123456789012", AWS_SEED, "SHA1", 6, 30);
    assert_code_matches(&env, "bob", github, "SHA1", 6, 30);
    assert_code_matches(&env, "carl", old_site, "SHA1", 6, 30);

    // The same export again: reported, never overwritten.
    let again = env.run(["seed", "import", "-"], &link);
    again.success();
    assert!(again.stderr().contains("skipped bob"), "{}", again.stderr());

    // One account, by `seed add`; several are refused there, with the way to import them.
    env.run(["seed", "add", "both", "--uri", "-"], &link)
        .failure(&[
            "holds 4 accounts",
            "nothing was added",
            "mfa-agent seed import -",
        ]);

    // A damaged payload stores nothing, not even its first account.
    let fresh = TestEnv::with_keyring();
    let broken = format!(
        "{}\n{}",
        migration_link(&[("carol", "", github)]),
        &link[..link.len() - 12]
    );
    fresh
        .run(["seed", "import", "-"], &broken)
        .failure(&["line 2", "nothing was imported"]);
    assert!(listed(&fresh)["seeds"].as_array().unwrap().is_empty());

    // The QR code the app shows, made by an independent encoder.
    let image = fresh.path().join("transfer.png");
    let made = std::process::Command::new("qrencode")
        .args(["-o", image.to_str().unwrap(), &link])
        .status()
        .unwrap();
    assert!(made.success());
    fresh
        .run(["seed", "import", "--qr", image.to_str().unwrap()], "")
        .success();
    assert_code_matches(&fresh, "bob", github, "SHA1", 6, 30);
}
