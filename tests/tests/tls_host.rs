//! A host behind a TLS-terminating proxy (DEPLOY.md), reached over `https://` by the real
//! `bridle` CLI and the alloy client (a review of 2026-12-06: the Rust tools were built
//! without TLS and refused every `https://` URL before connecting, so operators could only
//! expose a host over plain HTTP). The certificate is trusted through `SSL_CERT_FILE`; a
//! client that does not trust it refuses the host.

use alloy_primitives::U256;
use bridle_tests::tls_proxy::TlsProxy;
use bridle_tests::*;

const POLICY: &str = include_str!("../../examples/policies/usdc-daily.toml");
const USDC: alloy_primitives::Address = alloy_primitives::address!("5FbDB2315678afecb367f032d93F642f64180aa3");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_and_the_alloy_client_reach_a_host_over_https_and_check_its_certificate() {
    let s = Stack::start();
    let dir = tempfile::tempdir().unwrap();
    let proxy = TlsProxy::start(&s.host.url, dir.path());
    let key = s.enclave.identity_key_hex();
    let trust = dir.path().join("trust.json");
    let export = |ca: Option<&std::path::Path>| {
        let mut c = cli::bridle_cmd(&trust);
        c.current_dir(dir.path()).env_remove("SSL_CERT_FILE").env_remove("SSL_CERT_DIR");
        if let Some(ca) = ca {
            c.env("SSL_CERT_FILE", ca);
        }
        c.args(["audit", "export", "--host", &proxy.url, "--identity-key", &key, "--out", "audit.json"])
            .output()
            .unwrap()
    };

    // Without the proxy's certificate among its roots, the CLI refuses the host.
    let o = export(None);
    assert!(!o.status.success(), "{}", cli::text(&o));
    assert!(cli::text(&o).to_lowercase().contains("certificate"), "{}", cli::text(&o));
    assert_eq!(proxy.handshakes(), 0, "no handshake completed with an untrusted certificate");

    // Trusting it: the fresh head comes back over TLS, signed by the pinned enclave.
    let o = export(Some(&proxy.cert_pem));
    assert!(o.status.success(), "{}", cli::text(&o));
    assert!(proxy.handshakes() >= 1);

    // The alloy client over the same proxy: connects, and a signature comes back whole.
    // (Its roots are read when it is built; this test is alone in its binary.)
    std::env::set_var("SSL_CERT_FILE", &proxy.cert_pem);
    let (owner, agent) = (Actor::random(), Actor::random());
    let g = s.grant(&owner, &agent, &policy(POLICY)).await.expect("grant");
    let pinned = bridle_alloy::EnclaveTrust::pinned_hex(&key).unwrap();
    let before = proxy.handshakes();
    let signer = bridle_alloy::BridleSigner::connect(&proxy.url, &agent.secret, g.session, pinned).await.unwrap();
    let data = {
        use alloy_sol_types::SolCall;
        transferCall { to: owner.address, amount: U256::from(1_000_000u64) }.abi_encode()
    };
    let mut tx = alloy_consensus::TxEip1559 {
        chain_id: 31337,
        nonce: 0,
        gas_limit: 100_000,
        max_fee_per_gas: 2_000_000_000,
        max_priority_fee_per_gas: 1_000_000_000,
        to: alloy_primitives::TxKind::Call(USDC),
        value: U256::ZERO,
        access_list: Default::default(),
        input: data.into(),
    };
    signer.sign_tx(&mut tx).await.expect("signed over https");
    assert!(proxy.handshakes() > before, "the alloy client's requests went through the TLS proxy");
}
