//! The store conformance suite (`durable_tests::conformance`), run against each store: every
//! body becomes `postgres::<name>` on a fresh Postgres database and `sqlite::<name>` on a
//! fresh SQLite file.

use std::sync::Arc;

use durable::Store;
use durable_tests::TestDb;
use durable_tests::conformance::{self, SqliteFile};

macro_rules! conformance {
    ($($name:ident),* $(,)?) => {
        mod postgres {
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let db = TestDb::new().await;
                    let store: Arc<dyn Store> = Arc::new(db.store().await);
                    conformance::$name(store).await;
                }
            )*
        }

        mod sqlite {
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let file = SqliteFile::new();
                    let store: Arc<dyn Store> = Arc::new(file.store().await);
                    conformance::$name(store).await;
                }
            )*
        }
    };
}

conformance! {
    messages_are_kept_in_order_and_taken_once,
    a_taken_message_stays_with_the_lease_holder,
    a_message_wakes_a_run_waiting_for_its_topic,
    a_wait_for_a_message_already_sent_is_due_at_once,
    a_wait_on_several_topics_wakes_on_any_of_them,
    a_wait_on_several_topics_sees_a_message_already_sent,
    a_message_racing_a_wait_always_wakes_the_run,
    messages_to_finished_or_missing_runs_are_refused,
    events_are_published_with_their_checkpoint,
    claim_is_atomic,
    fencing_refuses_an_old_epoch,
    concurrent_checkpoints_are_each_fenced_and_recorded,
    expired_lease_makes_a_run_claimable_again,
    a_claimer_skips_the_expired_runs_it_is_executing,
    timers_wake_sleeping_runs_when_due,
    claims_count_and_park_at_the_limit,
    a_checkpoint_resets_the_claim_count,
    start_is_idempotent,
    list_filters_and_orders_newest_first,
    reads_are_scoped_by_workspace,
    cancel_fences_the_holder_and_leaves_finished_runs,
    asking_to_cancel_ends_unstarted_runs_and_tells_the_others,
    release_makes_a_run_pending_again,
    checkpoint_records_steps_and_transition_together,
    fail_and_park_record_their_reason,
    steps_are_upserted_by_sequence_number,
    claims_only_take_the_named_workflows,
    finished_runs_are_announced,
    a_due_tick_starts_one_run_with_the_derived_id,
    a_tick_fires_once_however_often_and_concurrently,
    a_tick_whose_run_exists_starts_no_other,
    catch_up_policies_handle_missed_ticks,
    catch_up_skip_fires_ticks_on_time,
    catch_up_all_fires_at_most_a_hundred_ticks_per_call,
    a_paused_schedule_fires_nothing,
    an_invalid_cron_or_time_zone_is_a_clear_error,
    time_zones_are_honoured,
    declaring_again_keeps_the_place_unless_the_cron_changes,
    next_schedule_due_in_follows_the_earliest_schedule,
}
