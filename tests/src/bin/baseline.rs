//! `koogate-baseline`: the yardstick of `make bench`. A minimal hyper HTTP/1.1 server that reads
//! each request's whole body and answers one fixed, signed body — what any server must do to
//! answer the marketplace, and nothing koogate adds (no signature check, no store, no JSON).
//!
//! `koogate-load` drives it with the same load generator, connections and concurrency as
//! `koogate serve`, on the same cores, and reports every koogate figure also as a ratio to it.
//! It runs on the same tokio runtime shape as `koogate serve` (multi-threaded, one worker per
//! core) so the ratio measures koogate's own work.
//!
//! Usage: `koogate-baseline --addr 127.0.0.1:PORT --key KEY`

use std::convert::Infallible;
use std::net::SocketAddr;
use std::process::ExitCode;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use koogate_protocol::body_sign;

/// The answer every request gets: a success with an instanceId, as small as koogate's.
const ANSWER: &str =
    r#"{"resultCode":"000000","resultMsg":"success.","instanceId":"baseline-instance"}"#;

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let (Some(addr), Some(key)) = (arg(&args, "--addr"), arg(&args, "--key")) else {
        eprintln!("usage: koogate-baseline --addr 127.0.0.1:PORT --key KEY");
        return ExitCode::from(2);
    };
    let addr: SocketAddr = match addr.parse() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("koogate-baseline: --addr {addr}: {e}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("koogate-baseline: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(serve(addr, &key)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("koogate-baseline: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(addr: SocketAddr, key: &str) -> Result<(), String> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
    // Signed once: the body never changes, so neither does its signature.
    let sign = body_sign::header_value(key, ANSWER.as_bytes());
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        let sign = sign.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req: Request<Incoming>| {
                let sign = sign.clone();
                async move {
                    // Read the whole body, as any server answering a signed request must.
                    let _ = req.into_body().collect().await;
                    let resp = Response::builder()
                        .header("Content-Type", "application/json")
                        .header(body_sign::HEADER_NAME, sign)
                        .body(Full::new(Bytes::from_static(ANSWER.as_bytes())))
                        .unwrap_or_default();
                    Ok::<_, Infallible>(resp)
                }
            });
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}
