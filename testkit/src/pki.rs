//! A throwaway PKI for TLS tests, made with the `openssl` command: a CA,
//! and a server and a client certificate signed by it.

use std::path::Path;
use std::process::Command;

/// `openssl req` arguments for a new P-256 key, unencrypted, written to the
/// file that follows.
const NEW_KEY: [&str; 6] = [
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:P-256",
    "-nodes",
    "-keyout",
];

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .expect("openssl");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Writes `ca.pem`, `ca-key.pem`, `server.pem`, `server-key.pem`,
/// `client.pem` and `client-key.pem` into `dir`: a CA and a server and a
/// client certificate signed by it, without any subject alternative name,
/// as OVS's own PKI tends to produce.
pub fn make_pki(dir: &Path) {
    std::fs::write(
        dir.join("leaf.ext"),
        "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n",
    )
    .unwrap();
    openssl(
        dir,
        &[
            &["req", "-x509"][..],
            &NEW_KEY,
            &[
                "ca-key.pem",
                "-out",
                "ca.pem",
                "-days",
                "2",
                "-subj",
                "/CN=test CA",
                "-addext",
                "basicConstraints=critical,CA:TRUE",
                "-addext",
                "keyUsage=critical,keyCertSign,cRLSign",
            ],
        ]
        .concat(),
    );
    for name in ["server", "client"] {
        openssl(
            dir,
            &[
                &["req"][..],
                &NEW_KEY,
                &[
                    &format!("{name}-key.pem"),
                    "-out",
                    &format!("{name}.csr"),
                    "-subj",
                    &format!("/CN={name} id:1234"),
                ],
            ]
            .concat(),
        );
        openssl(
            dir,
            &[
                "x509",
                "-req",
                "-in",
                &format!("{name}.csr"),
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca-key.pem",
                "-CAcreateserial",
                "-out",
                &format!("{name}.pem"),
                "-days",
                "2",
                "-extfile",
                "leaf.ext",
            ],
        );
    }
}

/// Re-signs `<name>.pem` in a PKI made by [`make_pki`] as an X.509
/// version 1 certificate (no extensions), as a plain
/// `openssl x509 -req` makes it.
pub fn reissue_as_v1(dir: &Path, name: &str) {
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &format!("{name}.csr"),
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca-key.pem",
            "-CAcreateserial",
            "-out",
            &format!("{name}.pem"),
            "-days",
            "2",
        ],
    );
}
