use durable::prelude::*;

#[durable::workflow]
async fn nightly_report(ctx: &WorkflowCtx) -> Result<(), WorkflowError> {
    let _started = ctx.now().await?;
    ctx.sleep(std::time::Duration::from_secs(60)).await?;
    Ok(())
}

fn takes<W: Workflow<Input = (), Output = ()>>(workflow: W) -> W {
    workflow
}

fn main() {
    let _ = takes(nightly_report);
    assert_eq!(<nightly_report as Workflow>::NAME, "nightly_report");
}
