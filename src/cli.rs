//! Flags shared by every binary (`#[command(flatten)]`), and the one helper
//! that turns parsed flags into a finished run: logging, runtime, context,
//! job, exit code.

use std::future::Future;
use std::process::ExitCode;

use crate::context::Context;
pub use crate::logging::LogFormat;
pub use crate::settings::CommonArgs;
use crate::settings::Settings;

/// Resolve settings, start logging and the async runtime, build the context
/// and run `job`; every error becomes one line on stderr and an exit code.
pub fn run_job<F, Fut>(job_name: &'static str, common: &CommonArgs, job: F) -> ExitCode
where
    F: FnOnce(Context) -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    passive_openmp();
    let settings = match Settings::resolve(common) {
        Ok(settings) => settings,
        Err(err) => return report(Err(err)),
    };
    crate::logging::init(settings.log_format, settings.verbosity);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => return report(Err(err.into())),
    };
    let result = runtime.block_on(async move {
        let ctx = Context::open(job_name, settings).await?;
        job(ctx).await
    });
    report(result)
}

/// LightGBM's OpenMP threads spin on a core while they wait for work by
/// default. On a shared cron machine, with another process on the other
/// core, that spinning made one fit take 97.5 s instead of 24.6 s
/// (issue 16). libgomp reads `OMP_WAIT_POLICY` when it is loaded, before
/// `main`, so a binary started without it runs itself again once, same
/// pid and arguments, with `PASSIVE`. A value the user set is kept.
fn passive_openmp() {
    use std::os::unix::process::CommandExt as _;
    const VAR: &str = "OMP_WAIT_POLICY";
    if std::env::var_os(VAR).is_some() {
        return;
    }
    let Ok(exe) = std::env::current_exe() else {
        return;
    };
    let mut args = std::env::args_os();
    let arg0 = args.next().unwrap_or_else(|| exe.clone().into_os_string());
    // `exec` returns only when it failed; then run on with the default.
    let _ = std::process::Command::new(&exe)
        .arg0(arg0)
        .args(args)
        .env(VAR, "PASSIVE")
        .exec();
}

/// Resolve settings and start logging without a database: for commands that
/// only touch the artifact store.
pub fn run_offline<F>(common: &CommonArgs, job: F) -> ExitCode
where
    F: FnOnce(Settings) -> anyhow::Result<()>,
{
    let settings = match Settings::resolve(common) {
        Ok(settings) => settings,
        Err(err) => return report(Err(err)),
    };
    crate::logging::init(settings.log_format, settings.verbosity);
    report(job(settings))
}

/// Exit code for an error: 2 for usage/configuration, 3 for raised alerts,
/// 1 for everything else (data, database, I/O failures).
pub fn exit_code_for(err: &anyhow::Error) -> u8 {
    for cause in err.chain() {
        if cause.downcast_ref::<crate::error::UsageError>().is_some() {
            return 2;
        }
        if cause.downcast_ref::<crate::error::AlertsRaised>().is_some() {
            return 3;
        }
        if let Some(store_err) = cause.downcast_ref::<crate::store::StoreError>()
            && store_err.is_usage()
        {
            return 2;
        }
    }
    1
}

/// SQLite's "database is locked" (SQLITE_BUSY, 5): another process held
/// the write lock past the busy timeout.
fn is_sqlite_busy(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause
            .downcast_ref::<sqlx::Error>()
            .and_then(|e| e.as_database_error())
            .and_then(|e| e.code())
            .is_some_and(|code| code == "5" || code == "517")
    })
}

/// Turn a job's result into the process exit code, printing a failure as
/// one line on stderr (never a panic or a backtrace).
pub fn report(result: anyhow::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            let code = exit_code_for(&err);
            // One line on stderr, whatever the log format: cron mails it as is.
            let hint = if is_sqlite_busy(&err) {
                "; the SQLite file stayed locked by another process for the whole busy timeout \
                 (sqlite_busy_timeout_secs): run again when that job has finished"
            } else {
                ""
            };
            eprintln!("error: {err:#}{hint}");
            ExitCode::from(code)
        }
    }
}
