use durable::prelude::*;

#[durable::workflow]
async fn fan_out(ctx: &WorkflowCtx) -> Result<(), WorkflowError> {
    let _ = ctx;
    let _thread = std::thread::spawn(|| ());
    Ok(())
}

fn main() {}
