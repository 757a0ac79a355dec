//! The demo's RabbitMQ part: a scheduled-posts queue whose failures dead-letter into a DLQ,
//! a publisher, and a worker that consumes, fails now and then, and sometimes stops.

use futures_util::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicCancelOptions, BasicConsumeOptions, BasicGetOptions, BasicNackOptions,
    BasicPublishOptions, BasicQosOptions, QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties};
use rand::Rng;
use tokio::task::JoinHandle;

use super::DemoError;

/// A connected RabbitMQ target.
pub struct Target {
    _conn: Connection,
    channel: Channel,
    /// `<prefix>scheduled_posts`.
    pub queue: String,
    /// `<prefix>scheduled_posts.dlq`.
    pub dlq: String,
    /// `<prefix>_pulse_demo`: an empty queue whose existence says the demo owns the others.
    marker: String,
    worker: Option<JoinHandle<()>>,
    worker_conn: Option<Connection>,
    url: String,
}

fn err(e: lapin::Error) -> DemoError {
    DemoError::target("rabbitmq", e)
}

impl Target {
    /// Connects; nothing is declared yet.
    pub async fn connect(url: &str, prefix: &str) -> Result<Target, DemoError> {
        if prefix.is_empty() {
            return Err(DemoError::usage(
                "--amqp-prefix must not be empty: the demo only touches queues named with it",
            ));
        }
        let conn = Connection::connect(url, ConnectionProperties::default())
            .await
            .map_err(err)?;
        let channel = conn.create_channel().await.map_err(err)?;
        Ok(Target {
            _conn: conn,
            channel,
            queue: format!("{prefix}scheduled_posts"),
            dlq: format!("{prefix}scheduled_posts.dlq"),
            marker: format!("{prefix}_pulse_demo"),
            worker: None,
            worker_conn: None,
            url: url.to_owned(),
        })
    }

    /// The arguments the demo declares its main queue with: failures dead-letter to the DLQ.
    fn queue_args(&self) -> FieldTable {
        let mut args = FieldTable::default();
        args.insert(
            "x-dead-letter-exchange".into(),
            AMQPValue::LongString("".into()),
        );
        args.insert(
            "x-dead-letter-routing-key".into(),
            AMQPValue::LongString(self.dlq.as_str().into()),
        );
        args
    }

    /// Whether a queue exists (a passive declare; a fresh channel each time, since a failed
    /// declare closes its channel).
    async fn exists(&self, queue: &str) -> Result<bool, DemoError> {
        let ch = self._conn.create_channel().await.map_err(err)?;
        let passive = QueueDeclareOptions {
            passive: true,
            ..QueueDeclareOptions::default()
        };
        let found = ch
            .queue_declare(queue.into(), passive, FieldTable::default())
            .await
            .is_ok();
        let _ = ch.close(200, "checked".into()).await;
        Ok(found)
    }

    /// Refuses queues with the demo's names unless its marker queue exists: then they are
    /// the demo's own. Only looks (passive declares); declares nothing.
    pub async fn check_safe(&self, _force: bool) -> Result<(), DemoError> {
        let marked = self.exists(&self.marker).await?;
        let mut found = Vec::new();
        for q in [&self.queue, &self.dlq] {
            if self.exists(q).await? {
                found.push(q.clone());
            }
        }
        super::judge(
            "rabbitmq",
            "the default vhost".to_owned(),
            &found,
            marked,
            |_| true,
            false,
            "--amqp-prefix",
        )
    }

    /// `demo --clean`: deletes the demo's two queues, then its marker. Without the marker
    /// nothing is deleted: queues with the demo's names are someone else's.
    pub async fn clean(&self) -> Result<String, DemoError> {
        if !self.exists(&self.marker).await? {
            return Ok(format!(
                "rabbitmq: no demo marker queue {:?}; nothing deleted",
                self.marker
            ));
        }
        for q in [&self.queue, &self.dlq, &self.marker] {
            self.channel
                .queue_delete(q.as_str().into(), QueueDeleteOptions::default())
                .await
                .map_err(err)?;
        }
        Ok(format!(
            "rabbitmq: deleted the queues {:?}, {:?} and {:?}",
            self.queue, self.dlq, self.marker
        ))
    }

    /// Recreates both queues, publishes a backlog, lets a worker process part of it (some
    /// posts fail into the DLQ), and leaves the rest queued with no consumer.
    pub async fn seed(&mut self, posts: usize) -> Result<(), DemoError> {
        for q in [&self.queue, &self.dlq] {
            self.channel
                .queue_delete(q.as_str().into(), QueueDeleteOptions::default())
                .await
                .map_err(err)?;
        }
        let durable = QueueDeclareOptions {
            durable: true,
            ..QueueDeclareOptions::default()
        };
        self.channel
            .queue_declare(self.marker.as_str().into(), durable, FieldTable::default())
            .await
            .map_err(err)?;
        self.channel
            .queue_declare(self.dlq.as_str().into(), durable, FieldTable::default())
            .await
            .map_err(err)?;
        self.channel
            .queue_declare(self.queue.as_str().into(), durable, self.queue_args())
            .await
            .map_err(err)?;
        for i in 0..posts {
            self.publish(i).await?;
        }
        // A worker run over part of the backlog: every 9th post fails to publish.
        for i in 0..posts / 2 {
            let Some(msg) = self
                .channel
                .basic_get(self.queue.as_str().into(), BasicGetOptions::default())
                .await
                .map_err(err)?
            else {
                break;
            };
            if i % 9 == 4 {
                msg.nack(BasicNackOptions {
                    requeue: false,
                    ..BasicNackOptions::default()
                })
                .await
                .map_err(err)?;
            } else {
                msg.ack(BasicAckOptions::default()).await.map_err(err)?;
            }
        }
        Ok(())
    }

    /// Publishes one scheduled post.
    pub async fn publish(&self, n: usize) -> Result<(), DemoError> {
        let platform = ["bluesky", "mastodon", "threads"][n % 3];
        let body = serde_json::json!({"post": n, "platform": platform});
        self.channel
            .basic_publish(
                "".into(),
                self.queue.as_str().into(),
                BasicPublishOptions::default(),
                body.to_string().as_bytes(),
                // The timestamp lets the broker report the age of the oldest waiting post.
                BasicProperties::default()
                    .with_delivery_mode(2)
                    .with_timestamp(chrono::Utc::now().timestamp().max(0) as u64),
            )
            .await
            .map_err(err)?
            .await
            .map_err(err)?;
        Ok(())
    }

    /// Whether the worker is consuming.
    pub fn worker_running(&self) -> bool {
        self.worker.is_some()
    }

    /// Starts the worker: a real consumer (so the broker counts it) that acks most posts and
    /// rejects about one in twenty into the DLQ.
    pub async fn start_worker(&mut self) -> Result<(), DemoError> {
        if self.worker.is_some() {
            return Ok(());
        }
        let conn = Connection::connect(&self.url, ConnectionProperties::default())
            .await
            .map_err(err)?;
        let ch = conn.create_channel().await.map_err(err)?;
        ch.basic_qos(5, BasicQosOptions::default())
            .await
            .map_err(err)?;
        let mut consumer = ch
            .basic_consume(
                self.queue.as_str().into(),
                "pulse-demo-worker".into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await
            .map_err(err)?;
        self.worker = Some(tokio::spawn(async move {
            let mut n: u64 = 0;
            while let Some(Ok(delivery)) = consumer.next().await {
                n += 1;
                // Publishing a post to a social platform takes a moment.
                tokio::time::sleep(std::time::Duration::from_millis(150)).await;
                let result = if n % 20 == 7 {
                    delivery
                        .nack(BasicNackOptions {
                            requeue: false,
                            ..BasicNackOptions::default()
                        })
                        .await
                } else {
                    delivery.ack(BasicAckOptions::default()).await
                };
                if result.is_err() {
                    break;
                }
            }
            let _ = ch
                .basic_cancel("pulse-demo-worker".into(), BasicCancelOptions::default())
                .await;
        }));
        self.worker_conn = Some(conn);
        Ok(())
    }

    /// Stops the worker as a crash would: its connection goes away.
    pub async fn stop_worker(&mut self) {
        if let Some(conn) = self.worker_conn.take() {
            let _ = conn.close(200, "demo worker stopping".into()).await;
        }
        if let Some(task) = self.worker.take() {
            task.abort();
        }
    }

    /// One second of live traffic: a few posts scheduled.
    pub async fn tick(&self, rng: &mut rand::rngs::StdRng, n: &mut usize) -> Result<(), DemoError> {
        for _ in 0..rng.random_range(0..4) {
            *n += 1;
            self.publish(*n).await?;
        }
        Ok(())
    }
}
