//! One connection type for every form of `session_store.redis`: a [`ConnectionManager`] (one
//! Redis, or the master Sentinel names), a plain multiplexed connection (the revocation
//! follower's, which blocks), or a [`ClusterConnection`] (Redis Cluster: each command goes to
//! the master of its key's slot, `MOVED` and `ASK` are followed and the slot map refreshed by
//! redis-rs).
//!
//! In a cluster a pipeline, a `MULTI` and a script may only touch keys of one slot (redis-rs
//! refuses a pipeline that crosses slots before sending it). Every key of the store carries a
//! hash tag for that reason (`s:{sid}`, `{bc}:queue`, `{rv}:z`, ...); what must write keys of
//! several slots goes through [`Link::each`], one pipeline on one Redis, one command per key
//! (concurrently) on a cluster.

use redis::aio::{ConnectionLike, ConnectionManager, MultiplexedConnection};
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, Pipeline, RedisFuture, RedisResult, Value};

#[derive(Clone)]
pub(crate) enum Link {
    Manager(ConnectionManager),
    Plain(MultiplexedConnection),
    Cluster(ClusterConnection),
}

impl Link {
    /// Run `groups` of commands (each group's keys in one slot, a group's commands in order)
    /// and answer every reply in order: one pipeline (one round trip) on a single Redis; on a
    /// cluster each group as a pipeline of its own, all at once. Not atomic: callers order
    /// their steps so that a crash between any two is safe.
    pub(crate) async fn each(&mut self, groups: Vec<Vec<Cmd>>) -> RedisResult<Vec<Value>> {
        let groups: Vec<Vec<Cmd>> = groups.into_iter().filter(|g| !g.is_empty()).collect();
        if groups.is_empty() {
            return Ok(Vec::new());
        }
        let pipe_of = |cmds: Vec<Cmd>| {
            let mut pipe = redis::pipe();
            cmds.into_iter().for_each(|c| {
                pipe.add_command(c);
            });
            pipe
        };
        match self {
            Link::Cluster(c) => {
                let calls = groups.into_iter().map(|g| {
                    let (mut c, pipe) = (c.clone(), pipe_of(g));
                    async move { pipe.query_async::<Vec<Value>>(&mut c).await }
                });
                Ok(futures_util::future::try_join_all(calls).await?.into_iter().flatten().collect())
            }
            _ => pipe_of(groups.into_iter().flatten().collect()).query_async(self).await,
        }
    }
}

impl ConnectionLike for Link {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Link::Manager(c) => c.req_packed_command(cmd),
            Link::Plain(c) => c.req_packed_command(cmd),
            Link::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Link::Manager(c) => c.req_packed_commands(pipeline, offset, count),
            Link::Plain(c) => c.req_packed_commands(pipeline, offset, count),
            Link::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Link::Manager(c) => c.get_db(),
            Link::Plain(c) => c.get_db(),
            Link::Cluster(c) => c.get_db(),
        }
    }
}
