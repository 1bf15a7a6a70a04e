//! The SDK's locks and boxed futures on `std` alone (no parking_lot, no
//! futures crate: each is a dependency every client build pays for).
//! A lock whose holder panicked stays usable: the guarded data are plain
//! caches (node lists, back-off schedules) with no invariant a half-done
//! update could break. Must not hold anything but these thin wrappers.
use std::future::Future;
use std::pin::Pin;
use std::sync::{MutexGuard, PoisonError, RwLockReadGuard, RwLockWriteGuard};

/// A boxed, sendable future (what `futures::future::BoxFuture` names).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// `std::sync::Mutex` whose `lock` ignores poisoning.
#[derive(Debug, Default)]
pub struct Mutex<T>(std::sync::Mutex<T>);

impl<T> Mutex<T> {
    pub const fn new(value: T) -> Mutex<T> {
        Mutex(std::sync::Mutex::new(value))
    }

    pub fn lock(&self) -> MutexGuard<'_, T> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// `std::sync::RwLock` whose `read` and `write` ignore poisoning.
#[derive(Debug, Default)]
pub struct RwLock<T>(std::sync::RwLock<T>);

impl<T> RwLock<T> {
    pub const fn new(value: T) -> RwLock<T> {
        RwLock(std::sync::RwLock::new(value))
    }

    pub fn read(&self) -> RwLockReadGuard<'_, T> {
        self.0.read().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn write(&self) -> RwLockWriteGuard<'_, T> {
        self.0.write().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lock_stays_usable_after_a_holder_panicked() {
        let m = std::sync::Arc::new(Mutex::new(1));
        let r = std::sync::Arc::new(RwLock::new(1));
        let (m2, r2) = (m.clone(), r.clone());
        let _ = std::thread::spawn(move || {
            let _g = m2.lock();
            let _w = r2.write();
            panic!("a holder panics");
        })
        .join();
        *m.lock() += 1;
        *r.write() += 1;
        assert_eq!((*m.lock(), *r.read()), (2, 2));
    }
}
