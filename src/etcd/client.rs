//! A small, synchronous etcd v3 client: the four KV calls the lease store needs (range, put,
//! delete, txn) over etcd's JSON gateway (`POST /v3/kv/...`, keys and values in base64), with
//! TLS and client certificates. The only module that imports ureq and rustls.
//!
//! Why not gRPC (etcd-client/tonic): it needs an async runtime and protoc at build time and
//! would multiply the hook's size; the gateway ships with every etcd 3.4+ and needs neither.
//!
//! Time is bounded: one request tries the endpoints in turn within `timeout` (etcd.json's
//! `timeout_ms`) all together, and once a request has failed on every endpoint the client
//! refuses every later one at once with the same message, so a hook run facing a dead cluster
//! spends at most one timeout before it fails closed.
//!
//! An election is ridden out: a member that answers "no leader" (or the like), or takes the
//! request and then says nothing (it waits for a leader that is gone), is alive, and its
//! cluster will have a leader again within a few seconds if a majority is up. Such a request
//! goes on trying every endpoint in turn, each attempt bounded by [`ATTEMPT_MAX`], for up to
//! [`ELECTION_RIDE`]. All the time a client spends in requests that did not get their answer
//! at once is bounded by [`PROCESS_BUDGET`], so a hook stays inside the runtime's hook timeout
//! however often the cluster stumbles; requests answered at once cost nothing of it, so a long
//! `gc` or a launcher that releases hours later is not affected. A retried write is safe: every
//! write is a transaction the lease store re-checks (its answer lost, it finds its own record).

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::bail;
use crate::error::{Error, Result};
use crate::etcd::config::EtcdConfig;

/// Keys per page when listing a prefix.
const PAGE: u64 = 500;
/// Operations per transaction (etcd's default --max-txn-ops is 128).
pub const MAX_TXN_OPS: usize = 100;
/// Largest response read (a page of leases is far smaller).
const MAX_BODY: u64 = 64 << 20;
/// The longest a client (one hook process) spends waiting on etcd, in all the requests that
/// did not get their answer at the first attempt: runtimes give the hook 10 s (`"timeout": 10`
/// in hooks/*.json, the README's advice), and 2 s of it stay for the rest (start-up, netlink,
/// files, the requests answered at once).
pub const PROCESS_BUDGET: Duration = Duration::from_secs(8);
/// What a request may still take once the budget is spent: one quick try.
const LAST_TRY: Duration = Duration::from_millis(250);
/// How long one request keeps trying a cluster whose members are up but have no leader. With
/// etcd's defaults (heartbeat 100 ms, election timeout 1 s) a dead leader is noticed within
/// 1-2 s and replaced within one more election round.
pub const ELECTION_RIDE: Duration = Duration::from_secs(6);
/// The longest one attempt on one endpoint: a member that has not yet noticed its leader died
/// holds the request for its own request timeout (7 s by default) and then fails it anyway.
pub const ATTEMPT_MAX: Duration = Duration::from_secs(1);
/// The pause between two rounds over the endpoints while riding out an election.
const ROUND_PAUSE: Duration = Duration::from_millis(100);

/// One stored key.
#[derive(Clone, Debug, PartialEq)]
pub struct Kv {
    pub key: Vec<u8>,
    pub value: Vec<u8>,
    pub create_revision: i64,
    pub mod_revision: i64,
}

/// A condition of a transaction.
pub enum Compare<'a> {
    /// The key does not exist (its create_revision is 0).
    Absent(&'a [u8]),
    /// The key was last changed at this revision (0: it does not exist).
    ModRevision(&'a [u8], i64),
    /// The key holds exactly this value (false when it does not exist).
    Value(&'a [u8], &'a [u8]),
}

/// An operation of a transaction.
pub enum Op<'a> {
    Put(&'a [u8], &'a [u8]),
    Delete(&'a [u8]),
    Get(&'a [u8]),
}

/// What a transaction did: which branch ran, and for each operation of that branch the keys a
/// `Get` found (empty for the others).
#[derive(Debug)]
pub struct TxnResult {
    pub succeeded: bool,
    pub gets: Vec<Vec<Kv>>,
}

pub struct Client {
    agent: ureq::Agent,
    endpoints: Vec<String>,
    timeout: Duration,
    config_path: String,
    /// The endpoint that answered last: tried first.
    preferred: AtomicUsize,
    /// Set once a request failed on every endpoint.
    down: Mutex<Option<String>>,
    /// Time spent so far in requests that did not get their answer at the first attempt
    /// (bounded by `PROCESS_BUDGET`).
    waited: Mutex<Duration>,
}

/// Why one attempt on one endpoint failed.
enum Failure {
    /// Nobody there: connection refused or reset, no TLS handshake in time. Try the next
    /// endpoint; a cluster where every member is like this is down.
    Retry(String),
    /// A member is up but cannot serve now: it has no leader (an election, or it is cut off
    /// from the majority), it is overloaded, or it took the request and said nothing. Try the
    /// next endpoint, and keep trying for up to `ELECTION_RIDE`.
    Busy(String),
    /// etcd answered and refused: the same request fails everywhere.
    Fatal(String),
}

impl Client {
    pub fn new(cfg: &EtcdConfig) -> Result<Client> {
        let config_path = cfg.path.display().to_string();
        let mut tls = ureq::tls::TlsConfig::builder()
            .provider(ureq::tls::TlsProvider::Rustls)
            .unversioned_rustls_crypto_provider(Arc::new(rustls::crypto::ring::default_provider()));
        if let Some(ca) = &cfg.ca {
            let certs = read_certs(ca)?;
            tls = tls.root_certs(ureq::tls::RootCerts::new_with_certs(&certs));
        }
        if let Some((cert, key)) = &cfg.client {
            let chain = read_certs(cert)?;
            let pem = fs_err::read(key)?;
            let key = ureq::tls::PrivateKey::from_pem(&pem).map_err(|e| {
                Error::msg(format!(
                    "no usable private key in {} ({e}): give a PEM key (PKCS#8, PKCS#1 or SEC1)",
                    key.display()
                ))
            })?;
            tls = tls.client_cert(Some(ureq::tls::ClientCert::new_with_certs(&chain, key)));
        }
        let agent = ureq::Agent::config_builder()
            .tls_config(tls.build())
            .http_status_as_error(false)
            .max_redirects(0)
            // Straight to etcd: an HTTPS_PROXY meant for the internet must not see leases.
            .proxy(None)
            .user_agent("ipvlan-hook")
            // etcd may have closed an idle connection (a restart): do not keep them long.
            .max_idle_age(Duration::from_secs(5))
            .build()
            .new_agent();
        Ok(Client {
            agent,
            endpoints: cfg.endpoints.clone(),
            timeout: cfg.timeout,
            config_path,
            preferred: AtomicUsize::new(0),
            down: Mutex::new(None),
            waited: Mutex::new(Duration::ZERO),
        })
    }

    /// `endpoint1, endpoint2`, for messages.
    pub fn endpoints(&self) -> String {
        self.endpoints.join(", ")
    }

    /// The value of `key`, if it exists.
    pub fn get(&self, key: &[u8]) -> Result<Option<Kv>> {
        let resp: RangeResponse = self.call("range", &json!({"key": b64(key)}))?;
        Ok(resp
            .kvs
            .into_iter()
            .next()
            .map(Kv::from)
            .filter(|kv| kv.key == key))
    }

    /// Does `key` exist? (No value transferred.)
    pub fn exists(&self, key: &[u8]) -> Result<bool> {
        let resp: RangeResponse =
            self.call("range", &json!({"key": b64(key), "count_only": true}))?;
        Ok(resp.count > 0)
    }

    /// How many keys start with `prefix`.
    pub fn count_prefix(&self, prefix: &[u8]) -> Result<i64> {
        let resp: RangeResponse = self.call(
            "range",
            &json!({"key": b64(prefix), "range_end": b64(&prefix_end(prefix)), "count_only": true}),
        )?;
        Ok(resp.count)
    }

    /// Every key starting with `prefix`, in key order, read page by page from one revision.
    pub fn list_prefix(&self, prefix: &[u8], keys_only: bool) -> Result<Vec<Kv>> {
        let end = prefix_end(prefix);
        let mut start = prefix.to_vec();
        let mut revision = 0;
        let mut out = Vec::new();
        loop {
            let mut req = json!({
                "key": b64(&start), "range_end": b64(&end), "limit": PAGE.to_string(),
                "keys_only": keys_only,
            });
            if revision > 0 {
                req["revision"] = revision.to_string().into();
            }
            let resp: RangeResponse = self.call("range", &req)?;
            if revision == 0 {
                revision = resp.header.revision;
            }
            let n = resp.kvs.len();
            out.extend(resp.kvs.into_iter().map(Kv::from));
            match out.last() {
                Some(last) if resp.more && n > 0 => {
                    start = last.key.clone();
                    start.push(0);
                }
                _ => return Ok(out),
            }
        }
    }

    pub fn put(&self, key: &[u8], value: &[u8]) -> Result<()> {
        let _: Value = self.call("put", &json!({"key": b64(key), "value": b64(value)}))?;
        Ok(())
    }

    /// If every comparison holds, run `success`, else `failure`, as one atomic step.
    pub fn txn(&self, compare: &[Compare], success: &[Op], failure: &[Op]) -> Result<TxnResult> {
        if success.len().max(failure.len()) > MAX_TXN_OPS {
            bail!("internal error: etcd transaction with more than {MAX_TXN_OPS} operations");
        }
        let compare: Vec<Value> = compare
            .iter()
            .map(|c| match c {
                Compare::Absent(k) => json!({"target": "CREATE", "result": "EQUAL", "key": b64(k), "create_revision": "0"}),
                Compare::ModRevision(k, r) => json!({"target": "MOD", "result": "EQUAL", "key": b64(k), "mod_revision": r.to_string()}),
                Compare::Value(k, v) => json!({"target": "VALUE", "result": "EQUAL", "key": b64(k), "value": b64(v)}),
            })
            .collect();
        let ops = |ops: &[Op]| -> Vec<Value> {
            ops.iter()
                .map(|op| match op {
                    Op::Put(k, v) => json!({"request_put": {"key": b64(k), "value": b64(v)}}),
                    Op::Delete(k) => json!({"request_delete_range": {"key": b64(k)}}),
                    Op::Get(k) => json!({"request_range": {"key": b64(k)}}),
                })
                .collect()
        };
        let req = json!({"compare": compare, "success": ops(success), "failure": ops(failure)});
        let resp: TxnResponse = self.call("txn", &req)?;
        let gets = resp
            .responses
            .into_iter()
            .map(|r| {
                r.response_range
                    .map(|rr| rr.kvs.into_iter().map(Kv::from).collect())
                    .unwrap_or_default()
            })
            .collect();
        Ok(TxnResult {
            succeeded: resp.succeeded,
            gets,
        })
    }

    /// POST `/v3/kv/{method}` to the endpoints in turn until one answers: within the timeout
    /// while nobody answers, within `ELECTION_RIDE` once a member answered that it cannot
    /// serve yet, never past what is left of the process budget.
    fn call<T: for<'de> Deserialize<'de>>(&self, method: &str, body: &Value) -> Result<T> {
        if let Some(msg) = self.down.lock().map(|d| d.clone()).unwrap_or_default() {
            return Err(Error::msg(msg));
        }
        let start = Instant::now();
        let waited = self.waited.lock().map(|w| *w).unwrap_or_default();
        let budget_end = start + PROCESS_BUDGET.saturating_sub(waited).max(LAST_TRY);
        let result = self.call_within(method, body, start, budget_end);
        if !matches!(result, Ok((_, true))) {
            // Not answered at once: this request's time counts against the budget.
            if let Ok(mut w) = self.waited.lock() {
                *w += start.elapsed();
            }
        }
        result.map(|(v, _)| v)
    }

    /// `call`, with the request's start and the end of the process budget; also says whether
    /// the first attempt answered.
    fn call_within<T: for<'de> Deserialize<'de>>(
        &self,
        method: &str,
        body: &Value,
        start: Instant,
        budget_end: Instant,
    ) -> Result<(T, bool)> {
        let body = body.to_string();
        let mut deadline = (start + self.timeout).min(budget_end);
        let n = self.endpoints.len();
        let first = self.preferred.load(Ordering::Relaxed) % n;
        // The last reason each endpoint failed for.
        let mut reasons: Vec<Option<String>> = vec![None; n];
        // Rounds in a row in which no member was even reachable: two mean the cluster is down
        // (a pooled connection the server closed fails once, then works).
        let mut dead_rounds = 0;
        // Did a member that was up make us wait for an election?
        let mut rode = false;
        'rounds: for round in 0.. {
            if round > 0 {
                let left = deadline.saturating_duration_since(Instant::now());
                std::thread::sleep((left / 4).min(ROUND_PAUSE));
            }
            let mut busy = false;
            for i in 0..n {
                let left = deadline.saturating_duration_since(Instant::now());
                if left < Duration::from_millis(20) {
                    break 'rounds;
                }
                let idx = (first + i) % n;
                let endpoint = &self.endpoints[idx];
                // A silent endpoint may take at most its share of what is left.
                let share = (left / (n - i) as u32).min(ATTEMPT_MAX);
                let why = match self.attempt(endpoint, method, &body, share) {
                    Ok(text) => {
                        self.preferred.store(idx, Ordering::Relaxed);
                        let at_once = round == 0 && i == 0;
                        return serde_json::from_str(&text).map(|v| (v, at_once)).map_err(|e| {
                            Error::msg(format!(
                                "etcd at {endpoint} sent an unexpected answer to {method} ({e}): is it etcd 3.4 or later?"
                            ))
                        });
                    }
                    Err(Failure::Fatal(msg)) => {
                        bail!("etcd at {endpoint} refused the request ({method}): {msg}")
                    }
                    Err(Failure::Retry(why)) => why,
                    Err(Failure::Busy(why)) => {
                        // Alive: an election is under way, or this member is cut off from
                        // the majority while another may not be. Worth waiting for.
                        busy = true;
                        rode = true;
                        deadline = deadline.max((start + ELECTION_RIDE).min(budget_end));
                        why
                    }
                };
                reasons[idx] = Some(if n == 1 {
                    why
                } else {
                    format!("{endpoint}: {why}")
                });
            }
            dead_rounds = if busy { 0 } else { dead_rounds + 1 };
            if dead_rounds >= 2 {
                break;
            }
        }
        let mut reasons: Vec<String> = reasons.into_iter().flatten().collect();
        if reasons.is_empty() {
            reasons.push(format!("no answer within {} ms", self.timeout.as_millis()));
        }
        let state = if rode {
            format!(
                "has no leader this host can reach ({}; for {} ms, longer than an election takes: a majority of the members is down or cut off from this host)",
                reasons.join("; "),
                start.elapsed().as_millis()
            )
        } else {
            format!("is unreachable ({})", reasons.join("; "))
        };
        let msg = format!(
            "etcd at {} {state}: no address is leased or released without it ('ipvlan-hook gc' releases what a container stop could not, once etcd is back); check that etcd runs and {}",
            self.endpoints(),
            self.config_path
        );
        if let Ok(mut down) = self.down.lock() {
            *down = Some(msg.clone());
        }
        Err(Error::msg(msg))
    }

    fn attempt(
        &self,
        endpoint: &str,
        method: &str,
        body: &str,
        left: Duration,
    ) -> std::result::Result<String, Failure> {
        let url = format!("{endpoint}/v3/kv/{method}");
        // The connection (TCP and TLS) must be up within `left`; the whole exchange may take a
        // little longer, so that a timeout says which of the two failed: no connection means
        // nobody there, no answer on a connection means a member waiting for a leader.
        let sent = self
            .agent
            .post(&url)
            .config()
            .timeout_connect(Some(left))
            .timeout_global(Some(left + Duration::from_millis(50)))
            .build()
            .header("content-type", "application/json")
            .send(body);
        let mut resp = sent.map_err(|e| transport_failure(&e, left))?;
        let status = resp.status().as_u16();
        let text = resp
            .body_mut()
            .with_config()
            .limit(MAX_BODY)
            .read_to_string()
            .map_err(|e| transport_failure(&e, left))?;
        if status == 200 {
            return Ok(text);
        }
        let err: ErrorResponse = serde_json::from_str(&text).unwrap_or_default();
        let mut msg = if err.message.is_empty() {
            format!("HTTP {status}: {}", text.trim())
        } else {
            err.message
        };
        if msg.contains("client preface") {
            // etcd 3.4's gateway dials its own gRPC port with the server certificate as its
            // client certificate; with --client-cert-auth that certificate must allow it.
            msg.push_str(" (etcd's JSON gateway cannot reach its own gRPC server: with --client-cert-auth, give etcd a server certificate whose extendedKeyUsage includes clientAuth)");
        }
        if leader_loss(err.code, &msg) || (status >= 500 && err.code == 0) {
            Err(Failure::Busy(msg))
        } else {
            Err(Failure::Fatal(msg))
        }
    }
}

/// An answer that means "not now" rather than "no": gRPC codes 4 (deadline exceeded), 8
/// (resource exhausted: too many requests) and 14 (unavailable: no leader, stopping), and what
/// etcd 3.4 says with code 2 (unknown) when a member has no leader or lost it under a request
/// ("raft proposal dropped", "leader changed", "request timed out, possibly due to previous
/// leader failure").
fn leader_loss(code: i32, msg: &str) -> bool {
    // Also code 8, but no election ends it: an operator must compact and defragment.
    if msg.contains("database space exceeded") {
        return false;
    }
    matches!(code, 4 | 8 | 14)
        || (code == 2
            && [
                "proposal dropped",
                "leader",
                "timed out",
                "too many requests",
            ]
            .iter()
            .any(|m| msg.contains(m)))
}

/// A failed exchange: a timeout with the connection up is a member that took the request and
/// waits (`Busy`); anything else is nobody there (`Retry`).
fn transport_failure(e: &ureq::Error, left: Duration) -> Failure {
    match e {
        ureq::Error::Timeout(t)
            if !matches!(t, ureq::Timeout::Connect | ureq::Timeout::Resolve) =>
        {
            Failure::Busy("took the request, no answer".to_string())
        }
        _ => Failure::Retry(transport_error(e, left)),
    }
}

/// Short reasons: "connection refused", "no answer within 2500 ms", "TLS: …".
fn transport_error(e: &ureq::Error, left: Duration) -> String {
    match e {
        ureq::Error::Timeout(_) => format!("no answer within {} ms", left.as_millis()),
        ureq::Error::Io(io) => match io.kind() {
            std::io::ErrorKind::ConnectionRefused => "connection refused".to_string(),
            std::io::ErrorKind::TimedOut => format!("no answer within {} ms", left.as_millis()),
            _ => io.to_string(),
        },
        ureq::Error::HostNotFound => "host not found".to_string(),
        ureq::Error::Rustls(t) => format!("TLS: {t}"),
        other => other.to_string(),
    }
}

fn read_certs(path: &std::path::Path) -> Result<Vec<ureq::tls::Certificate<'static>>> {
    let pem = fs_err::read(path)?;
    let mut certs = Vec::new();
    for item in ureq::tls::parse_pem(&pem) {
        match item {
            Ok(ureq::tls::PemItem::Certificate(c)) => certs.push(c),
            Ok(_) => {}
            Err(e) => bail!("cannot read the PEM file {}: {e}", path.display()),
        }
    }
    if certs.is_empty() {
        bail!("no certificate in {} (expected PEM)", path.display());
    }
    Ok(certs)
}

/// The end of the range of keys starting with `prefix` (etcd's "prefix + 1").
pub fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    // All 0xff (never with our prefixes): to the end of the keyspace.
    vec![0]
}

fn b64(bytes: &[u8]) -> String {
    B64.encode(bytes)
}

/// The gateway writes int64 as JSON strings and leaves out zero values.
fn int64<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<i64, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Int {
        S(String),
        N(i64),
    }
    match Int::deserialize(d)? {
        Int::N(n) => Ok(n),
        Int::S(s) => s.parse().map_err(serde::de::Error::custom),
    }
}

fn bytes<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Vec<u8>, D::Error> {
    let s = String::deserialize(d)?;
    B64.decode(s).map_err(serde::de::Error::custom)
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Header {
    #[serde(deserialize_with = "int64")]
    revision: i64,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct RawKv {
    #[serde(deserialize_with = "bytes")]
    key: Vec<u8>,
    #[serde(deserialize_with = "bytes")]
    value: Vec<u8>,
    #[serde(deserialize_with = "int64")]
    create_revision: i64,
    #[serde(deserialize_with = "int64")]
    mod_revision: i64,
}

impl From<RawKv> for Kv {
    fn from(r: RawKv) -> Kv {
        Kv {
            key: r.key,
            value: r.value,
            create_revision: r.create_revision,
            mod_revision: r.mod_revision,
        }
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct RangeResponse {
    header: Header,
    kvs: Vec<RawKv>,
    more: bool,
    #[serde(deserialize_with = "int64")]
    count: i64,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct ResponseOp {
    response_range: Option<RangeResponse>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct TxnResponse {
    succeeded: bool,
    responses: Vec<ResponseOp>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct ErrorResponse {
    message: String,
    code: i32,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leader_loss_is_worth_waiting_for_a_refusal_is_not() {
        // What etcd 3.4's gateway answers while a member has no leader, or lost it.
        assert!(leader_loss(2, "raft proposal dropped"));
        assert!(leader_loss(14, "etcdserver: no leader"));
        assert!(leader_loss(2, "etcdserver: leader changed"));
        assert!(leader_loss(
            4,
            "etcdserver: request timed out, possibly due to previous leader failure"
        ));
        assert!(leader_loss(8, "etcdserver: too many requests"));
        // A refusal fails everywhere alike.
        assert!(!leader_loss(7, "etcdserver: permission denied"));
        assert!(!leader_loss(3, "etcdserver: key is not provided"));
        assert!(!leader_loss(8, "etcdserver: mvcc: database space exceeded"));
    }

    #[test]
    fn prefix_ends() {
        assert_eq!(prefix_end(b"/a/"), b"/a0");
        assert_eq!(prefix_end(b"a\xff"), b"b");
        assert_eq!(prefix_end(b"\xff"), b"\0");
    }

    #[test]
    fn gateway_json_with_omitted_defaults() {
        let r: RangeResponse = serde_json::from_str(
            r#"{"header":{"revision":"7"},"kvs":[{"key":"Zm9v","create_revision":"2","mod_revision":"5","version":"1","value":"YmFy"}],"count":"1"}"#,
        )
        .expect("range");
        assert_eq!(r.header.revision, 7);
        assert_eq!(r.count, 1);
        assert!(!r.more);
        let kv = Kv::from(r.kvs.into_iter().next().expect("kv"));
        assert_eq!(
            (kv.key.as_slice(), kv.value.as_slice()),
            (&b"foo"[..], &b"bar"[..])
        );
        assert_eq!((kv.create_revision, kv.mod_revision), (2, 5));
        let empty: RangeResponse =
            serde_json::from_str(r#"{"header":{"revision":"2"}}"#).expect("empty range");
        assert!(empty.kvs.is_empty() && empty.count == 0);
        let t: TxnResponse = serde_json::from_str(
            r#"{"header":{},"responses":[{"response_range":{"header":{"revision":"2"},"kvs":[{"key":"Zm9v"}],"count":"1"}},{"response_put":{"header":{}}}]}"#,
        )
        .expect("txn");
        assert!(!t.succeeded);
        assert_eq!(t.responses.len(), 2);
        assert!(t.responses[1].response_range.is_none());
        let kv = Kv::from(
            t.responses
                .into_iter()
                .next()
                .and_then(|r| r.response_range)
                .and_then(|r| r.kvs.into_iter().next())
                .expect("kv"),
        );
        assert!(kv.value.is_empty(), "an empty value is left out");
    }
}
