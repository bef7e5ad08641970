//! Drops what test runs left on the test server more than a day ago (see
//! `durable_tests::sweep`). Needs the server's superuser: run as root on the server's machine,
//! as `scripts/test` is in CI; anywhere else it says why it does nothing.

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let superuser = match durable_tests::superuser::Superuser::get() {
        Ok(superuser) => superuser,
        Err(why) => {
            println!("test-db-sweep: skipped: {why}");
            return;
        }
    };
    let dropped = durable_tests::sweep::sweep(&superuser).await;
    println!(
        "test-db-sweep: dropped {} leftovers older than {}",
        dropped.len(),
        durable_tests::sweep::MAX_AGE
    );
    for what in dropped {
        println!("test-db-sweep:   {what}");
    }
    println!(
        "test-db-sweep: kept this build's template {}, however old",
        durable_tests::db::template_name()
    );
}
