//! `koogate serve`: the route table in one process, on the configured store.

use std::sync::Arc;
use std::time::Instant;

use koogate_runtime::config::Config;
use koogate_runtime::local::{self, Router};
use koogate_runtime::serve_options::{self, ServeOptions};
use koogate_runtime::web::WebFunction;
use koogate_runtime::{telemetry, App, Function};

/// Every function of the route table. A route whose function is not built yet is missing here,
/// and `serve` refuses to start rather than serve a partial table silently.
fn functions() -> Vec<Arc<dyn Function>> {
    let mut functions: Vec<Arc<dyn Function>> = vec![
        Arc::new(koogate_saas::SaasFunction),
        Arc::new(koogate_saas_legacy::SaasLegacyFunction),
        Arc::new(koogate_license::LicenseFunction),
        Arc::new(koogate_license_legacy::LicenseLegacyFunction),
        Arc::new(koogate_order_notify::OrderNotifyFunction),
    ];
    functions.extend(koogate_kit::KitFunction::all());
    functions
}

/// Every web function of the route table (the joint-operation login, the Product API).
fn web_functions() -> Result<Vec<Arc<dyn WebFunction>>, String> {
    let sso = koogate_sso::SsoFunction::from_env().map_err(|e| e.to_string())?;
    Ok(vec![
        Arc::new(sso),
        Arc::new(koogate_product_api::ProductApi),
    ])
}

pub fn run(addr: Option<String>) -> Result<(), String> {
    let started = Instant::now();
    let addr = serve_options::listen_addr(addr.as_deref(), |k| std::env::var(k).ok());
    let mut options = ServeOptions::from_env()?;
    fit_fd_limit(&mut options);
    return_large_buffers_to_the_os();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))?;
    let result = runtime.block_on(async move {
        telemetry::init_logging();
        let config = Config::from_env("sqlite:.koogate/koogate.db").map_err(|e| e.to_string())?;
        let functions = functions();
        let web = web_functions()?;
        for route in &koogate_infra::routes::table() {
            let served_by_web = web.iter().any(|w| w.routes().contains(route));
            if !served_by_web && !functions.iter().any(|f| f.route() == route) {
                return Err(format!(
                    "route {} {} has no function",
                    route.method, route.path
                ));
            }
        }
        let store_desc = format!("{:?}", config.store);
        // Only the interface types with a key are served: a seller with just a basic key starts.
        let app = App::build(config, &[]).await.map_err(|e| e.to_string())?;
        let (functions, dark): (Vec<_>, Vec<_>) = functions.into_iter().partition(|f| {
            let i = f.route().interface;
            !i.needs_key() || !app.secrets().keys(i).is_empty()
        });
        if functions.is_empty() {
            return Err("the secrets document has no access key: nothing to serve \
                        (access_keys.basic, kit, license, general or legacy)"
                .into());
        }
        for f in &dark {
            let r = f.route();
            eprintln!(
                "koogate serve: {} {} not served: no access_keys.{} in the secrets document",
                r.method,
                r.path,
                r.interface.name()
            );
        }
        let listener = tokio::net::TcpListener::bind(&addr)
            .await
            .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
        let bound = listener.local_addr().map_err(|e| e.to_string())?;
        let scheme = if options.tls.is_some() {
            "https"
        } else {
            "http"
        };
        let base = &options.base_path;
        eprintln!("koogate serve: store {store_desc}");
        for f in &functions {
            let r = f.route();
            eprintln!(
                "koogate serve: {} {scheme}://{bound}{} -> {}",
                r.method,
                base.from_table(r.path),
                r.function
            );
        }
        for w in &web {
            for r in w.routes() {
                eprintln!(
                    "koogate serve: {} {scheme}://{bound}{} -> {} (web)",
                    r.method,
                    base.from_table(r.path),
                    r.function
                );
            }
        }
        eprintln!("koogate serve: GET {scheme}://{bound}/healthz -> health check");
        eprintln!(
            "koogate serve: at most {} connections; timeouts: header {} s, body {} s, idle {} s",
            options.max_connections,
            options.timeouts.header.as_secs(),
            options.timeouts.body.as_secs(),
            options.timeouts.idle.as_secs()
        );
        spawn_usage_push(&app);
        if app.dispatcher.has_sinks() {
            eprintln!("koogate serve: delivering events (dispatcher running)");
            tokio::spawn(Arc::clone(&app.dispatcher).run());
        } else {
            eprintln!(
                "koogate serve: events are recorded, not delivered (set KOOGATE_WEBHOOK_URL)"
            );
        }
        eprintln!(
            "koogate serve: ready on {scheme}://{bound} in {} ms",
            started.elapsed().as_millis()
        );
        let router = Router::new(functions)
            .with_web(web)
            .with_base_path(options.base_path.clone());
        local::serve_with(listener, app, router, options, stop_signal())
            .await
            .map_err(|e| format!("server stopped: {e}"))?;
        eprintln!("koogate serve: stopped");
        Ok(())
    });
    // Background work (usage push, event delivery) is not waited for: what it had not finished
    // is retried by the next process, as after a crash.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    result
}

/// Completes on SIGTERM (FunctionGraph, systemd, `docker stop`) or SIGINT (Ctrl-C).
async fn stop_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) {
            (Ok(mut term), Ok(mut int)) => {
                let name = tokio::select! {
                    _ = term.recv() => "SIGTERM",
                    _ = int.recv() => "SIGINT",
                };
                eprintln!("koogate serve: {name}: stopping");
            }
            _ => {
                eprintln!("koogate serve: cannot listen for signals; stop with SIGKILL");
                std::future::pending::<()>().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
        eprintln!("koogate serve: Ctrl-C: stopping");
    }
}

/// Request bodies of up to 1 MiB are read into buffers that glibc would, after the first few
/// are freed, serve from the heap and keep (its mmap threshold grows on its own): a burst of
/// large or stalled bodies then leaves the process that much bigger for good. A fixed threshold
/// of 128 KiB makes every large buffer a mapping of its own, returned to the system when freed.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn return_large_buffers_to_the_os() {
    // SAFETY: mallopt only sets an allocator parameter; it is called before any thread starts.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 128 * 1024);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn return_large_buffers_to_the_os() {}

/// Raises the soft open-file limit (RLIMIT_NOFILE) to the hard one (at most 65536), as Go and
/// many servers do, then fits the connection cap below it (see
/// [`ServeOptions::fit_fd_limit`]).
#[cfg(unix)]
fn fit_fd_limit(options: &mut ServeOptions) {
    const WANTED: libc::rlim_t = 65_536;
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct passed by pointer.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        eprintln!("koogate serve: cannot read the open-file limit; keeping the connection cap");
        return;
    }
    let target = lim.rlim_max.min(WANTED);
    if lim.rlim_cur < target {
        let raised = libc::rlimit {
            rlim_cur: target,
            rlim_max: lim.rlim_max,
        };
        // SAFETY: as above.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
            lim.rlim_cur = target;
        }
    }
    // rlim_t is u64 on 64-bit targets, narrower on some others.
    #[allow(clippy::useless_conversion)]
    let soft = u64::try_from(lim.rlim_cur).unwrap_or(u64::MAX);
    if let Some(wanted) = options.fit_fd_limit(soft) {
        eprintln!(
            "koogate serve: open-file limit {soft}: at most {} connections (not {wanted}); \
             raise `ulimit -n` for more",
            options.max_connections
        );
    }
}

#[cfg(not(unix))]
fn fit_fd_limit(_options: &mut ServeOptions) {}

/// Pushes due usage every `KOOGATE_USAGE_PUSH_INTERVAL_SECS` (default 300; `0`: never), as the
/// scheduled function does on AWS. Usage is recorded with `koogate usage record` against the same
/// database: no HTTP route accepts it, so only local users with access to the file can report.
fn spawn_usage_push(app: &Arc<App>) {
    let secs = std::env::var("KOOGATE_USAGE_PUSH_INTERVAL_SECS")
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
        .unwrap_or(300);
    if secs == 0 {
        eprintln!("koogate serve: usage push off (KOOGATE_USAGE_PUSH_INTERVAL_SECS=0)");
        return;
    }
    if !app.marketplace_configured() {
        eprintln!(
            "koogate serve: usage push off: no marketplace configured (add \"iam\" to the \
             secrets, or set KOOGATE_MARKETPLACE_SITE or KOOGATE_MARKETPLACE_URL)"
        );
        return;
    }
    let pusher =
        match koogate_usage_push::Pusher::from_app(app, koogate_usage_push::PushOptions::default())
        {
            Ok(p) => p,
            Err(e) => {
                eprintln!("koogate serve: usage push off: {e}");
                return;
            }
        };
    eprintln!(
        "koogate serve: usage push every {secs} s to {}",
        pusher.marketplace.settings().base
    );
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(secs));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            pusher.run().await;
        }
    });
}
