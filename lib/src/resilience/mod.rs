//! Resilience: retries with backoff, the shared circuit breaker, and the exit-status sets
//! and clock they decide with.

pub mod backoff;
pub mod breaker;
pub mod clock;
pub mod codes;
pub mod retry;
