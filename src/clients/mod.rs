//! The client plumbing the source kinds and the job store share, so that a Redis or Postgres
//! client is built one way wherever it is used: whether a URL is one its client can use
//! ([`urls`]), the Redis client and its self-reconnecting connection ([`redis`]), the
//! Postgres connect options and lazily connected pool ([`postgres`]), and the HTTP client of
//! the kinds that speak HTTP ([`http`]).

pub mod http;
#[cfg(feature = "postgres")]
pub mod postgres;
#[cfg(feature = "redis")]
pub mod redis;
pub mod urls;
