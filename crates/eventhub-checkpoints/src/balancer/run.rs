//! [`LoadBalancer::run`]: the tick loop as a stream of events.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;

use futures::future::{Either, select};
use futures::stream::{self, Stream};

use super::{Changes, LoadBalancer};
use crate::error::StoreError;
use crate::model::PartitionId;

/// What [`LoadBalancer::run`] reports.
#[derive(Debug)]
pub enum BalancerEvent {
    /// This consumer now holds the partition: start reading it from its
    /// checkpoint.
    Gained(PartitionId),
    /// Another consumer took the partition, or its ownership expired: stop
    /// reading it; do not checkpoint it any more.
    Lost(PartitionId),
    /// Shutdown: stop reading the partition and write its last checkpoint.
    /// It is released (others may claim it at once) when the stream is next
    /// polled after the last of these events.
    Releasing(PartitionId),
    /// A listing or claim failed; the loop goes on.
    Error(StoreError),
}

enum Phase {
    /// Tick at once (the first tick), then wait between ticks.
    Running {
        first: bool,
    },
    /// Shutdown was signalled: report `Releasing`, then release.
    Stopping,
    /// `Releasing` was reported for every held partition.
    Releasing,
    Done,
}

struct State {
    balancer: LoadBalancer,
    shutdown: Pin<Box<dyn Future<Output = ()> + Send>>,
    pending: VecDeque<BalancerEvent>,
    phase: Phase,
}

impl State {
    fn push(&mut self, changes: Changes) {
        let Changes { gained, lost, errors } = changes;
        self.pending.extend(lost.into_iter().map(BalancerEvent::Lost));
        self.pending.extend(gained.into_iter().map(BalancerEvent::Gained));
        self.pending.extend(errors.into_iter().map(BalancerEvent::Error));
    }
}

impl LoadBalancer {
    /// Runs the balancer until `shutdown` completes, as a stream of events.
    ///
    /// Ticks at once, then every [`update_interval`] ± [`jitter`] (a tokio
    /// timer: poll the stream inside a tokio runtime with time enabled).
    /// Within a tick, losses are reported before gains, then errors. When
    /// `shutdown` completes (it is only awaited between ticks), the stream
    /// reports [`BalancerEvent::Releasing`] for every held partition,
    /// releases them all on the next poll (reporting failures as
    /// [`BalancerEvent::Error`]) and ends. Dropping the stream instead stops
    /// without releasing: the partitions then expire after
    /// [`ownership_expiration`].
    ///
    /// [`update_interval`]: super::LoadBalancerOptions::update_interval
    /// [`jitter`]: super::LoadBalancerOptions::jitter
    /// [`ownership_expiration`]: super::LoadBalancerOptions::ownership_expiration
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use eventhub_checkpoints::*;
    /// use futures::StreamExt;
    ///
    /// # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
    /// let store = CheckpointStore::new(Arc::new(InMemoryBackend::new()));
    /// let scope = Scope::new("ns.servicebus.windows.net", "hub", "$Default")?;
    /// let partitions = (0..2).map(PartitionId::from).collect();
    /// let options = LoadBalancerOptions { strategy: LoadBalancingStrategy::Greedy, ..Default::default() };
    /// let balancer =
    ///     LoadBalancer::new(store, scope, OwnerId::new("me")?, partitions, options, Arc::new(SystemClock));
    ///
    /// let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    /// let mut events = Box::pin(balancer.run(async move { let _ = stopped.await; }));
    /// let mut stop = Some(stop);
    /// while let Some(event) = events.next().await {
    ///     match event {
    ///         BalancerEvent::Gained(p) => {
    ///             println!("start reading {p}");
    ///             if p == PartitionId::from(1) {
    ///                 stop.take().map(|s| s.send(()));
    ///             }
    ///         }
    ///         BalancerEvent::Lost(p) => println!("stop reading {p}"),
    ///         BalancerEvent::Releasing(p) => println!("checkpoint and stop reading {p}"),
    ///         BalancerEvent::Error(e) => eprintln!("{e}"),
    ///     }
    /// }
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    pub fn run<F>(self, shutdown: F) -> impl Stream<Item = BalancerEvent> + Send + 'static
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let state = State {
            balancer: self,
            shutdown: Box::pin(shutdown),
            pending: VecDeque::new(),
            phase: Phase::Running { first: true },
        };
        stream::unfold(state, |mut state| async move {
            loop {
                if let Some(event) = state.pending.pop_front() {
                    return Some((event, state));
                }
                match state.phase {
                    Phase::Running { first } => {
                        if !first {
                            let delay = state.balancer.next_delay();
                            let sleep = std::pin::pin!(tokio::time::sleep(delay));
                            if let Either::Right(_) = select(sleep, state.shutdown.as_mut()).await {
                                state.phase = Phase::Stopping;
                                continue;
                            }
                        }
                        state.phase = Phase::Running { first: false };
                        let changes = state.balancer.tick().await;
                        state.push(changes);
                    }
                    Phase::Stopping => {
                        let held: Vec<PartitionId> = state.balancer.owned().cloned().collect();
                        state
                            .pending
                            .extend(held.into_iter().map(BalancerEvent::Releasing));
                        state.phase = Phase::Releasing;
                    }
                    Phase::Releasing => {
                        let released = state.balancer.release_all().await;
                        state
                            .pending
                            .extend(released.errors.into_iter().map(BalancerEvent::Error));
                        state.phase = Phase::Done;
                    }
                    Phase::Done => return None,
                }
            }
        })
    }
}
