//! Why an unwound user stack ended, and how that travels with it.
//!
//! A stack that stops before the program's outermost frame would read, in a flame graph, as
//! if its last caller were a root. So a stack that ends early carries its reason as one
//! extra, synthetic frame: a marker value above every user address (user space ends below
//! 2^63 on x86-64 and arm64), which the profile shows as `[truncated: REASON]`. The reasons
//! are also counted, per sample, for the profile's comments and the summary.

/// Why the unwinder stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StackEnd {
    /// The outermost frame: the call frame information marks the return address undefined
    /// (`_start`, the child side of `clone3`, Go's `goexit`), or the frame-pointer chain
    /// ends with zero.
    Outermost,
    /// No unwind information covers the code, and the frame-pointer step failed.
    NoUnwindInfo,
    /// The caller's frame lies above the copied part of the stack.
    CopyEnded,
    /// A return address outside the process's code, or a frame address outside the stack.
    BadReturnAddress,
    /// The stack has the most frames kept.
    DepthLimit,
    /// A caller's frame below its callee's: a loop or a corrupt stack.
    Loop,
    /// The process was never read, so only the sampled address is known.
    UnknownProcess,
}

/// Markers start here; below it lie real addresses.
const MARKER_BASE: u64 = 0xffff_ffff_ffff_ff00;

impl StackEnd {
    pub const ALL: [StackEnd; 7] = [
        StackEnd::Outermost,
        StackEnd::NoUnwindInfo,
        StackEnd::CopyEnded,
        StackEnd::BadReturnAddress,
        StackEnd::DepthLimit,
        StackEnd::Loop,
        StackEnd::UnknownProcess,
    ];

    /// The counter's name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Outermost => "outermost",
            Self::NoUnwindInfo => "no_unwind_info",
            Self::CopyEnded => "copy_ended",
            Self::BadReturnAddress => "bad_return_address",
            Self::DepthLimit => "depth_limit",
            Self::Loop => "loop",
            Self::UnknownProcess => "unknown_process",
        }
    }

    /// The synthetic root frame of a stack that ended this way; none for a complete one.
    pub fn root_frame(self) -> Option<&'static str> {
        Some(match self {
            Self::Outermost => return None,
            Self::NoUnwindInfo => "[truncated: no unwind info]",
            Self::CopyEnded => "[truncated: copy ended]",
            Self::BadReturnAddress => "[truncated: bad return address]",
            Self::DepthLimit => "[truncated: depth limit]",
            Self::Loop => "[truncated: stack loops]",
            Self::UnknownProcess => "[truncated: unknown process]",
        })
    }

    fn index(self) -> usize {
        Self::ALL.iter().position(|&e| e == self).unwrap_or(0)
    }

    /// The value that stands for this end as a stack's last frame.
    pub fn marker(self) -> u64 {
        MARKER_BASE + self.index() as u64
    }

    /// The end a frame value stands for, if it is a marker.
    pub fn from_marker(frame: u64) -> Option<Self> {
        let i = usize::try_from(frame.checked_sub(MARKER_BASE)?).ok()?;
        Self::ALL.get(i).copied()
    }

    /// Appends the marker of an early end to `frames`.
    pub fn mark(self, frames: &mut Vec<u64>) {
        if self != Self::Outermost {
            frames.push(self.marker());
        }
    }
}

/// Samples by how their stacks ended.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StackEnds {
    counts: [u64; StackEnd::ALL.len()],
}

impl StackEnds {
    pub fn add(&mut self, end: StackEnd, samples: u64) {
        self.counts[end.index()] += samples;
    }

    pub fn merge(&mut self, other: &StackEnds) {
        for (a, b) in self.counts.iter_mut().zip(other.counts) {
            *a += b;
        }
    }

    pub fn get(&self, end: StackEnd) -> u64 {
        self.counts[end.index()]
    }

    pub fn total(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// The share of samples whose stacks reached an outermost frame, if any were unwound.
    pub fn complete_share(&self) -> Option<f64> {
        let total = self.total();
        (total > 0).then(|| self.get(StackEnd::Outermost) as f64 / total as f64)
    }

    /// Every reason with samples, by counter name.
    pub fn nonzero(&self) -> Vec<(&'static str, u64)> {
        StackEnd::ALL
            .iter()
            .map(|&e| (e.name(), self.get(e)))
            .filter(|&(_, n)| n > 0)
            .collect()
    }

    /// One line for the profile's comments.
    pub fn describe(&self) -> String {
        let reasons: Vec<String> = self
            .nonzero()
            .iter()
            .map(|(name, n)| format!("{name}={n}"))
            .collect();
        format!(
            "user stacks unwound in user space, by how they ended (samples): {}",
            if reasons.is_empty() {
                "none".to_string()
            } else {
                reasons.join(", ")
            }
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers_round_trip_and_lie_above_user_addresses() {
        for e in StackEnd::ALL {
            assert_eq!(StackEnd::from_marker(e.marker()), Some(e));
            assert!(e.marker() > 1 << 63);
        }
        assert_eq!(StackEnd::from_marker(0x7fff_ffff_f000), None);
        assert_eq!(StackEnd::from_marker(u64::MAX), None);
        let mut frames = vec![1, 2];
        StackEnd::Outermost.mark(&mut frames);
        StackEnd::CopyEnded.mark(&mut frames);
        assert_eq!(frames, vec![1, 2, StackEnd::CopyEnded.marker()]);
    }

    #[test]
    fn counts_and_share() {
        let mut ends = StackEnds::default();
        assert_eq!(ends.complete_share(), None);
        ends.add(StackEnd::Outermost, 98);
        ends.add(StackEnd::CopyEnded, 2);
        assert_eq!(ends.complete_share(), Some(0.98));
        assert_eq!(ends.nonzero(), vec![("outermost", 98), ("copy_ended", 2)]);
    }
}
