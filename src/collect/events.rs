//! Process events from every loaded BPF object, through one ring-buffer poller.
use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use libbpf_rs::{MapCore, RingBuffer, RingBufferBuilder};

use super::{CollectError, ProcEvent};
use crate::bpf::from_bytes;
use crate::bpf::shared::{proc_event, proc_event_kind};

/// Polls the `events` ring buffers of all collectors at once. Drop it before the collectors
/// whose maps it reads.
pub struct EventStream {
    rb: RingBuffer<'static>,
    pending: Rc<RefCell<Vec<ProcEvent>>>,
}

impl EventStream {
    pub fn new(maps: &[&dyn MapCore]) -> Result<Self, CollectError> {
        let err = |source| CollectError::Map {
            map: "events",
            source,
        };
        let pending = Rc::new(RefCell::new(Vec::new()));
        let mut builder = RingBufferBuilder::new();
        for map in maps {
            let sink = pending.clone();
            builder
                .add(*map, move |data: &[u8]| {
                    if let Some(e) = decode_event(data) {
                        sink.borrow_mut().push(e);
                    }
                    0
                })
                .map_err(err)?;
        }
        let rb = builder.build().map_err(err)?;
        Ok(Self { rb, pending })
    }

    /// Waits up to `timeout` for events and returns them.
    pub fn poll(&self, timeout: Duration) -> Vec<ProcEvent> {
        // An interrupted poll (a signal) is not an error: the caller checks why.
        let _ = self.rb.poll(timeout);
        std::mem::take(&mut *self.pending.borrow_mut())
    }
}

fn decode_event(data: &[u8]) -> Option<ProcEvent> {
    if data.len() < std::mem::size_of::<proc_event>() {
        return None;
    }
    let e: proc_event = from_bytes(data);
    match proc_event_kind(e.kind) {
        proc_event_kind::PROC_EVENT_FIRST_SAMPLE => Some(ProcEvent::FirstSample(e.pid)),
        proc_event_kind::PROC_EVENT_EXEC => Some(ProcEvent::Exec(e.pid)),
        proc_event_kind::PROC_EVENT_FORK => Some(ProcEvent::Fork { child: e.pid }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bpf::as_bytes;

    #[test]
    fn decodes_process_events() {
        let e = proc_event {
            kind: proc_event_kind::PROC_EVENT_EXEC.0,
            pid: 42,
            parent_pid: 0,
            _pad: 0,
        };
        assert_eq!(decode_event(as_bytes(&e)), Some(ProcEvent::Exec(42)));
        assert_eq!(decode_event(&[0u8; 3]), None);
    }
}
