//! Which kind of lock a futex wait was for, from the functions on the waiter's stack: the
//! futex system call itself is the same for a pthread mutex, an rwlock, a condition
//! variable or a runtime's own lock.
use crate::pprof::LabelValue;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mechanism {
    PthreadMutex,
    PthreadRwlock,
    /// Any other futex wait that is not waiting for an event: a runtime's or a program's
    /// own lock, or libc's internal ones.
    Futex,
    /// Waiting for an event, not for a lock: condition variables, semaphores, joins,
    /// barriers. Not contention, so not in a mutex profile.
    NotALock,
}

impl Mechanism {
    /// The value of the `mechanism` label.
    pub fn label(self) -> Option<(&'static str, LabelValue)> {
        let name = match self {
            Self::PthreadMutex => "pthread_mutex",
            Self::PthreadRwlock => "pthread_rwlock",
            Self::Futex => "futex",
            Self::NotALock => return None,
        };
        Some(("mechanism", LabelValue::Str(name.into())))
    }
}

/// Classifies a wait by its stack's function names, innermost first: the innermost one
/// that belongs to a known primitive decides. (A condition variable re-taking its mutex
/// after the wake-up is mutex contention, and its innermost frames say so.)
pub fn classify<'a>(innermost_first: impl IntoIterator<Item = &'a str>) -> Mechanism {
    for name in innermost_first {
        if let Some(m) = primitive_of(name) {
            return m;
        }
    }
    Mechanism::Futex
}

fn primitive_of(name: &str) -> Option<Mechanism> {
    // glibc's internal names carry prefixes and suffixes: ___pthread_mutex_lock,
    // __pthread_mutex_lock_full, __pthread_rwlock_wrlock_full64, __new_sem_wait_slow64.
    const EVENTS: &[&str] = &[
        "pthread_cond_",
        "sem_wait",
        "sem_timedwait",
        "sem_clockwait",
        "pthread_join",
        "pthread_clockjoin",
        "pthread_timedjoin",
        "pthread_barrier_wait",
    ];
    if name.contains("pthread_mutex_") && name.contains("lock") && !name.contains("unlock") {
        Some(Mechanism::PthreadMutex)
    } else if name.contains("pthread_rwlock_") && name.contains("lock") && !name.contains("unlock")
    {
        Some(Mechanism::PthreadRwlock)
    } else if EVENTS.iter().any(|e| name.contains(e)) {
        Some(Mechanism::NotALock)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glibc_names_are_classified() {
        let mutex = [
            "__futex_abstimed_wait_common",
            "__lll_lock_wait",
            "___pthread_mutex_lock",
            "worker",
        ];
        assert_eq!(classify(mutex), Mechanism::PthreadMutex);
        let rw = [
            "__futex_abstimed_wait_common",
            "__pthread_rwlock_wrlock_full64",
            "writer",
        ];
        assert_eq!(classify(rw), Mechanism::PthreadRwlock);
        // A priority-inheritance mutex waits in FUTEX_LOCK_PI, below the lock's slow path
        // (pthread_mutex_lock jumps to it: its own frame is gone).
        let pi = [
            "__futex_lock_pi64",
            "__pthread_mutex_lock_full",
            "take_handed_pi_mutex",
        ];
        assert_eq!(classify(pi), Mechanism::PthreadMutex);
        let cond = [
            "__futex_abstimed_wait_common",
            "__pthread_cond_wait_common",
            "___pthread_cond_wait",
            "consumer",
        ];
        assert_eq!(classify(cond), Mechanism::NotALock);
        // Re-taking the mutex inside pthread_cond_wait is contention on the mutex.
        let retake = [
            "__lll_lock_wait",
            "__pthread_mutex_cond_lock",
            "__pthread_cond_wait_common",
        ];
        assert_eq!(classify(retake), Mechanism::PthreadMutex);
        assert_eq!(
            classify(["__new_sem_wait_slow64", "sem_wait"]),
            Mechanism::NotALock
        );
        assert_eq!(
            classify(["__pthread_clockjoin_ex", "main"]),
            Mechanism::NotALock
        );
        assert_eq!(
            classify(["syscall", "my_futex_lock", "main"]),
            Mechanism::Futex
        );
        assert_eq!(
            classify(["__lll_lock_wait_private", "_IO_flockfile"]),
            Mechanism::Futex
        );
        assert_eq!(classify([]), Mechanism::Futex);
    }

    #[test]
    fn only_lock_mechanisms_have_a_label() {
        assert!(Mechanism::NotALock.label().is_none());
        assert!(matches!(
            Mechanism::PthreadRwlock.label(),
            Some(("mechanism", LabelValue::Str(s))) if s == "pthread_rwlock"
        ));
    }
}
