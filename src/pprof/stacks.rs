//! Reading a decoded `Profile` back as plain stacks: checks pprof's rules (so a broken file
//! gets an error naming the problem, never a panic), picks a value column, and expands each
//! sample into named frames, root first, with inlined frames expanded caller first.
use std::collections::HashMap;

use super::proto::{Function, Location, Mapping, Profile};

/// One frame of a stack, as the text outputs show it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Frame {
    pub name: String,
    /// In a `[kernel.kallsyms]` mapping.
    pub kernel: bool,
    /// Inlined into the frame below it (its caller).
    pub inlined: bool,
}

/// A sample's frames, root first, with the value of the chosen column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stack {
    pub frames: Vec<Frame>,
    pub value: i64,
    /// The sample's labels: (key, string value or number as text).
    pub labels: Vec<(String, String)>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ProfileError {
    #[error("the profile has no sample types")]
    NoSampleTypes,
    #[error("the string table does not start with \"\"")]
    FirstStringNotEmpty,
    #[error("string index {0} is out of range")]
    BadString(i64),
    #[error("sample {sample} has {got} values for {want} sample types")]
    ValueCount {
        sample: usize,
        got: usize,
        want: usize,
    },
    #[error("{kind} id 0 or a repeated id {id}")]
    BadId { kind: &'static str, id: u64 },
    #[error("sample {sample} refers to location {id}, which does not exist")]
    MissingLocation { sample: usize, id: u64 },
    #[error("location {location} refers to function {id}, which does not exist")]
    MissingFunction { location: u64, id: u64 },
    #[error("location {location} refers to mapping {id}, which does not exist")]
    MissingMapping { location: u64, id: u64 },
    #[error("no sample type {asked}; the profile has: {available}")]
    UnknownSampleType { asked: String, available: String },
}

/// A checked profile, with its tables indexed by id.
pub struct ProfileView<'p> {
    profile: &'p Profile,
    locations: HashMap<u64, &'p Location>,
    functions: HashMap<u64, &'p Function>,
    mappings: HashMap<u64, &'p Mapping>,
}

fn index<'p, T>(
    items: &'p [T],
    kind: &'static str,
    id: impl Fn(&T) -> u64,
) -> Result<HashMap<u64, &'p T>, ProfileError> {
    let mut map = HashMap::with_capacity(items.len());
    for item in items {
        let i = id(item);
        if i == 0 || map.insert(i, item).is_some() {
            return Err(ProfileError::BadId { kind, id: i });
        }
    }
    Ok(map)
}

impl<'p> ProfileView<'p> {
    /// Checks the rules every pprof reader relies on.
    pub fn new(profile: &'p Profile) -> Result<Self, ProfileError> {
        if profile.sample_type.is_empty() {
            return Err(ProfileError::NoSampleTypes);
        }
        if profile.string_table.first().is_none_or(|s| !s.is_empty()) {
            return Err(ProfileError::FirstStringNotEmpty);
        }
        let view = Self {
            profile,
            locations: index(&profile.location, "location", |l| l.id)?,
            functions: index(&profile.function, "function", |f| f.id)?,
            mappings: index(&profile.mapping, "mapping", |m| m.id)?,
        };
        view.check_strings()?;
        for (i, s) in profile.sample.iter().enumerate() {
            if s.value.len() != profile.sample_type.len() {
                return Err(ProfileError::ValueCount {
                    sample: i,
                    got: s.value.len(),
                    want: profile.sample_type.len(),
                });
            }
            for id in &s.location_id {
                if !view.locations.contains_key(id) {
                    return Err(ProfileError::MissingLocation { sample: i, id: *id });
                }
            }
        }
        for l in &profile.location {
            if l.mapping_id != 0 && !view.mappings.contains_key(&l.mapping_id) {
                return Err(ProfileError::MissingMapping {
                    location: l.id,
                    id: l.mapping_id,
                });
            }
            for line in &l.line {
                if !view.functions.contains_key(&line.function_id) {
                    return Err(ProfileError::MissingFunction {
                        location: l.id,
                        id: line.function_id,
                    });
                }
            }
        }
        Ok(view)
    }

    fn check_strings(&self) -> Result<(), ProfileError> {
        let p = self.profile;
        let n = p.string_table.len() as i64;
        let mut all = vec![
            p.drop_frames,
            p.keep_frames,
            p.default_sample_type,
            p.doc_url,
        ];
        all.extend(p.comment.iter().copied());
        for t in p.sample_type.iter().chain(p.period_type.iter()) {
            all.extend([t.r#type, t.unit]);
        }
        for m in &p.mapping {
            all.extend([m.filename, m.build_id]);
        }
        for f in &p.function {
            all.extend([f.name, f.system_name, f.filename]);
        }
        for l in p.sample.iter().flat_map(|s| &s.label) {
            all.extend([l.key, l.str, l.num_unit]);
        }
        match all.into_iter().find(|i| !(0..n).contains(i)) {
            Some(bad) => Err(ProfileError::BadString(bad)),
            None => Ok(()),
        }
    }

    pub fn profile(&self) -> &'p Profile {
        self.profile
    }

    pub fn string(&self, i: i64) -> &'p str {
        &self.profile.string_table[i as usize]
    }

    /// The column to read: `name` if given, else the profile's default (the last one unless
    /// `default_sample_type` says otherwise), as pprof picks it.
    pub fn sample_index(&self, name: Option<&str>) -> Result<usize, ProfileError> {
        let types: Vec<&str> = self
            .profile
            .sample_type
            .iter()
            .map(|t| self.string(t.r#type))
            .collect();
        let wanted = match name {
            Some(n) => n,
            None if self.profile.default_sample_type != 0 => {
                self.string(self.profile.default_sample_type)
            }
            None => return Ok(types.len() - 1),
        };
        types
            .iter()
            .position(|t| *t == wanted)
            .ok_or_else(|| ProfileError::UnknownSampleType {
                asked: wanted.to_owned(),
                available: types.join(", "),
            })
    }

    /// The unit of a column (`nanoseconds`, `bytes`, `count`).
    pub fn unit(&self, index: usize) -> &'p str {
        self.string(self.profile.sample_type[index].unit)
    }

    pub fn type_name(&self, index: usize) -> &'p str {
        self.string(self.profile.sample_type[index].r#type)
    }

    /// Every sample as a root-first stack with the value of column `index`.
    pub fn stacks(&self, index: usize) -> Vec<Stack> {
        self.profile
            .sample
            .iter()
            .map(|s| {
                let mut frames = Vec::new();
                // location_id[0] is the leaf; walk from the root end.
                for id in s.location_id.iter().rev() {
                    self.push_location_frames(self.locations[id], &mut frames);
                }
                let labels = s
                    .label
                    .iter()
                    .map(|l| {
                        let value = if l.str != 0 {
                            self.string(l.str).to_owned()
                        } else {
                            l.num.to_string()
                        };
                        (self.string(l.key).to_owned(), value)
                    })
                    .collect();
                Stack {
                    frames,
                    value: s.value[index],
                    labels,
                }
            })
            .collect()
    }

    /// A Location's frames, caller first: its last line is the function really called, the
    /// ones before it were inlined into it.
    fn push_location_frames(&self, loc: &Location, frames: &mut Vec<Frame>) {
        let kernel = self
            .mappings
            .get(&loc.mapping_id)
            .is_some_and(|m| self.string(m.filename) == "[kernel.kallsyms]");
        if loc.line.is_empty() {
            frames.push(Frame {
                name: format!("0x{:x}", loc.address),
                kernel,
                inlined: false,
            });
            return;
        }
        let last = loc.line.len() - 1;
        for (i, line) in loc.line.iter().enumerate().rev() {
            let f = self.functions[&line.function_id];
            frames.push(Frame {
                name: self.string(f.name).to_owned(),
                kernel,
                inlined: i != last,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pprof::{FrameInfo, LabelValue, MappingInfo, ProfileBuilder, SampleType};

    const TYPES: &[SampleType] = &[
        SampleType {
            kind: "samples",
            unit: "count",
        },
        SampleType {
            kind: "cpu",
            unit: "nanoseconds",
        },
    ];

    fn frame(name: &str) -> FrameInfo {
        FrameInfo {
            name: name.into(),
            ..Default::default()
        }
    }

    fn example() -> Profile {
        let mut b = ProfileBuilder::new(TYPES, TYPES[1], 10);
        let exe = b.mapping(&MappingInfo {
            start: 1,
            limit: 100,
            path: "/bin/app".into(),
            ..Default::default()
        });
        let k = b.mapping(&MappingInfo {
            start: 1000,
            limit: 2000,
            path: "[kernel.kallsyms]".into(),
            ..Default::default()
        });
        let sys = b.location(k, 1500, &[frame("vfs_read")]);
        let leaf = b.location(exe, 10, &[frame("inner"), frame("outer")]);
        let main = b.location(exe, 20, &[frame("main")]);
        b.sample(
            vec![sys, leaf, main],
            &[1, 10],
            &[("tid", LabelValue::num(5))],
        );
        b.build()
    }

    #[test]
    fn expands_stacks_root_first_with_inlines_and_kernel() {
        let p = example();
        let v = ProfileView::new(&p).unwrap();
        let idx = v.sample_index(None).unwrap();
        assert_eq!(v.type_name(idx), "cpu");
        let s = &v.stacks(idx)[0];
        let names: Vec<(&str, bool, bool)> = s
            .frames
            .iter()
            .map(|f| (f.name.as_str(), f.kernel, f.inlined))
            .collect();
        assert_eq!(
            names,
            [
                ("main", false, false),
                ("outer", false, false),
                ("inner", false, true),
                ("vfs_read", true, false)
            ]
        );
        assert_eq!(s.value, 10);
        assert_eq!(s.labels, vec![("tid".to_string(), "5".to_string())]);
    }

    #[test]
    fn picks_columns_by_name() {
        let p = example();
        let v = ProfileView::new(&p).unwrap();
        assert_eq!(v.sample_index(Some("samples")), Ok(0));
        let err = v.sample_index(Some("alloc_space")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "no sample type alloc_space; the profile has: samples, cpu"
        );
    }

    #[test]
    fn broken_profiles_are_named() {
        let mut p = example();
        p.sample[0].value.pop();
        assert!(matches!(
            ProfileView::new(&p),
            Err(ProfileError::ValueCount { .. })
        ));
        let mut p = example();
        p.sample[0].location_id.push(99);
        assert_eq!(
            ProfileView::new(&p).err(),
            Some(ProfileError::MissingLocation { sample: 0, id: 99 })
        );
        let mut p = example();
        p.function[0].name = 1000;
        assert_eq!(
            ProfileView::new(&p).err(),
            Some(ProfileError::BadString(1000))
        );
        let mut p = example();
        p.string_table[0] = "x".into();
        assert_eq!(
            ProfileView::new(&p).err(),
            Some(ProfileError::FirstStringNotEmpty)
        );
        let mut p = example();
        p.location[1].id = p.location[0].id;
        assert!(matches!(
            ProfileView::new(&p),
            Err(ProfileError::BadId { .. })
        ));
        assert_eq!(
            ProfileView::new(&Profile::default()).err(),
            Some(ProfileError::NoSampleTypes)
        );
    }
}
