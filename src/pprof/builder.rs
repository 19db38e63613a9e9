//! Builds a `Profile` that follows PPROF.md: one string table with `""` first, non-zero
//! unique ids, one Location per (mapping, address) with its inlined frames as Lines, and
//! samples merged when their stack and labels are equal.
use std::collections::HashMap;

use super::proto::{Function, Label, Line, Location, Mapping, Profile, Sample, ValueType};

/// One value column (or the period type): `samples/count`, `cpu/nanoseconds`, ...
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SampleType {
    pub kind: &'static str,
    pub unit: &'static str,
}

/// A memory mapping of a binary (or the kernel), as it goes into the profile.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct MappingInfo {
    pub start: u64,
    pub limit: u64,
    pub file_offset: u64,
    pub path: String,
    /// GNU build id as lowercase hex, or empty.
    pub build_id: String,
    pub has_functions: bool,
    pub has_filenames: bool,
    pub has_line_numbers: bool,
    pub has_inline_frames: bool,
}

/// One frame of a Location: a function and where in it. Several make an inline chain.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct FrameInfo {
    /// Demangled name.
    pub name: String,
    /// Name as in the symbol table (mangled); empty means the same as `name`.
    pub system_name: String,
    pub file: String,
    pub line: u32,
    pub start_line: u32,
}

/// A label's value: numeric labels are what `-tagfocus=tid=N` matches.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum LabelValue {
    Num {
        value: i64,
        unit: Option<&'static str>,
    },
    Str(String),
}

impl LabelValue {
    pub fn num(value: i64) -> Self {
        Self::Num { value, unit: None }
    }
}

#[derive(PartialEq, Eq, Hash)]
struct SampleKey {
    locations: Vec<u64>,
    labels: Vec<(i64, LabelValueIdx)>,
}

#[derive(PartialEq, Eq, Hash, Clone, Copy)]
enum LabelValueIdx {
    Num { value: i64, unit: i64 },
    Str(i64),
}

/// Accumulates a profile; `build` hands out the finished `Profile`.
pub struct ProfileBuilder {
    strings: Vec<String>,
    string_ids: HashMap<String, i64>,
    sample_types: Vec<ValueType>,
    period_type: ValueType,
    period: i64,
    mappings: Vec<Mapping>,
    mapping_ids: HashMap<MappingInfo, u64>,
    functions: Vec<Function>,
    function_ids: HashMap<(i64, i64, i64, i64), u64>,
    locations: Vec<Location>,
    location_ids: HashMap<(u64, u64), u64>,
    synthetic_ids: HashMap<String, u64>,
    samples: Vec<Sample>,
    sample_index: HashMap<SampleKey, usize>,
    comments: Vec<i64>,
    drop_frames: i64,
    default_sample_type: i64,
    time_nanos: i64,
    duration_nanos: i64,
}

impl ProfileBuilder {
    pub fn new(sample_types: &[SampleType], period_type: SampleType, period: i64) -> Self {
        let mut b = Self {
            strings: vec![String::new()],
            string_ids: HashMap::from([(String::new(), 0)]),
            sample_types: Vec::new(),
            period_type: ValueType::default(),
            period,
            mappings: Vec::new(),
            mapping_ids: HashMap::new(),
            functions: Vec::new(),
            function_ids: HashMap::new(),
            locations: Vec::new(),
            location_ids: HashMap::new(),
            synthetic_ids: HashMap::new(),
            samples: Vec::new(),
            sample_index: HashMap::new(),
            comments: Vec::new(),
            drop_frames: 0,
            default_sample_type: 0,
            time_nanos: 0,
            duration_nanos: 0,
        };
        b.sample_types = sample_types.iter().map(|t| b.value_type(*t)).collect();
        b.period_type = b.value_type(period_type);
        b
    }

    fn value_type(&mut self, t: SampleType) -> ValueType {
        ValueType {
            r#type: self.string(t.kind),
            unit: self.string(t.unit),
        }
    }

    /// Interns a string and returns its index in the string table.
    pub fn string(&mut self, s: &str) -> i64 {
        if let Some(&id) = self.string_ids.get(s) {
            return id;
        }
        let id = self.strings.len() as i64;
        self.strings.push(s.to_owned());
        self.string_ids.insert(s.to_owned(), id);
        id
    }

    /// Adds a mapping (or finds the equal one) and returns its id.
    pub fn mapping(&mut self, info: &MappingInfo) -> u64 {
        if let Some(&id) = self.mapping_ids.get(info) {
            return id;
        }
        let id = self.mappings.len() as u64 + 1;
        let mapping = Mapping {
            id,
            memory_start: info.start,
            memory_limit: info.limit,
            file_offset: info.file_offset,
            filename: self.string(&info.path),
            build_id: self.string(&info.build_id),
            has_functions: info.has_functions,
            has_filenames: info.has_filenames,
            has_line_numbers: info.has_line_numbers,
            has_inline_frames: info.has_inline_frames,
        };
        self.mappings.push(mapping);
        self.mapping_ids.insert(info.clone(), id);
        id
    }

    /// Whether a Location for (mapping, address) exists already, so its frames need not be
    /// resolved again.
    pub fn location_id(&self, mapping_id: u64, address: u64) -> Option<u64> {
        self.location_ids.get(&(mapping_id, address)).copied()
    }

    /// Adds the Location for (mapping, address), or returns the existing one. `frames` is
    /// innermost inlined callee first; the last frame is the function really called. No
    /// frames leaves the address for pprof to show (or re-symbolize).
    pub fn location(&mut self, mapping_id: u64, address: u64, frames: &[FrameInfo]) -> u64 {
        if let Some(id) = self.location_id(mapping_id, address) {
            return id;
        }
        let line = frames
            .iter()
            .map(|f| Line {
                function_id: self.function(f),
                line: i64::from(f.line),
                column: 0,
            })
            .collect();
        let id = self.locations.len() as u64 + 1;
        self.locations.push(Location {
            id,
            mapping_id,
            address,
            line,
            is_folded: false,
        });
        self.location_ids.insert((mapping_id, address), id);
        id
    }

    /// A Location that is not code: a named frame such as a thread root, with no mapping and
    /// no address. One per name.
    pub fn synthetic_location(&mut self, name: &str) -> u64 {
        if let Some(&id) = self.synthetic_ids.get(name) {
            return id;
        }
        let function_id = self.function(&FrameInfo {
            name: name.to_owned(),
            ..Default::default()
        });
        let id = self.locations.len() as u64 + 1;
        self.locations.push(Location {
            id,
            mapping_id: 0,
            address: 0,
            line: vec![Line {
                function_id,
                line: 0,
                column: 0,
            }],
            is_folded: false,
        });
        self.synthetic_ids.insert(name.to_owned(), id);
        id
    }

    fn function(&mut self, f: &FrameInfo) -> u64 {
        let name = self.string(&f.name);
        let system_name = if f.system_name.is_empty() {
            name
        } else {
            self.string(&f.system_name)
        };
        let filename = self.string(&f.file);
        let start_line = i64::from(f.start_line);
        let key = (name, system_name, filename, start_line);
        if let Some(&id) = self.function_ids.get(&key) {
            return id;
        }
        let id = self.functions.len() as u64 + 1;
        self.functions.push(Function {
            id,
            name,
            system_name,
            filename,
            start_line,
        });
        self.function_ids.insert(key, id);
        id
    }

    /// Adds values to the sample with these locations (leaf first) and labels; equal
    /// stacks with equal labels are one sample.
    ///
    /// # Panics
    /// If `values` does not have one value per sample type: that is a bug in the caller.
    pub fn sample(&mut self, locations: Vec<u64>, values: &[i64], labels: &[(&str, LabelValue)]) {
        assert_eq!(
            values.len(),
            self.sample_types.len(),
            "one value per sample type"
        );
        let labels: Vec<(i64, LabelValueIdx)> = labels
            .iter()
            .map(|(k, v)| {
                let key = self.string(k);
                let v = match v {
                    LabelValue::Num { value, unit } => LabelValueIdx::Num {
                        value: *value,
                        unit: unit.map_or(0, |u| self.string(u)),
                    },
                    LabelValue::Str(s) => LabelValueIdx::Str(self.string(s)),
                };
                (key, v)
            })
            .collect();
        let key = SampleKey { locations, labels };
        if let Some(&i) = self.sample_index.get(&key) {
            for (acc, v) in self.samples[i].value.iter_mut().zip(values) {
                *acc += v;
            }
            return;
        }
        let label = key
            .labels
            .iter()
            .map(|&(key, v)| match v {
                LabelValueIdx::Num { value, unit } => Label {
                    key,
                    str: 0,
                    num: value,
                    num_unit: unit,
                },
                LabelValueIdx::Str(s) => Label {
                    key,
                    str: s,
                    num: 0,
                    num_unit: 0,
                },
            })
            .collect();
        self.samples.push(Sample {
            location_id: key.locations.clone(),
            value: values.to_vec(),
            label,
        });
        self.sample_index.insert(key, self.samples.len() - 1);
    }

    pub fn comment(&mut self, text: &str) {
        let id = self.string(text);
        self.comments.push(id);
    }

    /// Frames matching this regex (and those above them on the leaf side) are dropped.
    pub fn drop_frames(&mut self, regex: &str) {
        self.drop_frames = self.string(regex);
    }

    pub fn default_sample_type(&mut self, kind: &str) {
        self.default_sample_type = self.string(kind);
    }

    pub fn time(&mut self, start_unix_nanos: i64, duration_nanos: i64) {
        self.time_nanos = start_unix_nanos;
        self.duration_nanos = duration_nanos;
    }

    pub fn build(self) -> Profile {
        Profile {
            sample_type: self.sample_types,
            sample: self.samples,
            mapping: self.mappings,
            location: self.locations,
            function: self.functions,
            string_table: self.strings,
            drop_frames: self.drop_frames,
            keep_frames: 0,
            time_nanos: self.time_nanos,
            duration_nanos: self.duration_nanos,
            period_type: Some(self.period_type),
            period: self.period,
            comment: self.comments,
            default_sample_type: self.default_sample_type,
            doc_url: 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pprof::{read_profile, write_profile};
    use std::collections::HashSet;

    const CPU: &[SampleType] = &[
        SampleType {
            kind: "samples",
            unit: "count",
        },
        SampleType {
            kind: "cpu",
            unit: "nanoseconds",
        },
    ];
    const PERIOD: SampleType = SampleType {
        kind: "cpu",
        unit: "nanoseconds",
    };

    fn frame(name: &str) -> FrameInfo {
        FrameInfo {
            name: name.into(),
            ..Default::default()
        }
    }

    fn example() -> Profile {
        let mut b = ProfileBuilder::new(CPU, PERIOD, 10_101_010);
        let exe = b.mapping(&MappingInfo {
            start: 0x1000,
            limit: 0x9000,
            path: "/bin/app".into(),
            build_id: "abcd".into(),
            has_functions: true,
            ..Default::default()
        });
        let leaf = b.location(exe, 0x1100, &[frame("inlined_callee"), frame("leaf")]);
        let main = b.location(exe, 0x1200 - 1, &[frame("main")]);
        let labels = [
            ("pid", LabelValue::num(42)),
            ("comm", LabelValue::Str("app".into())),
        ];
        b.sample(vec![leaf, main], &[1, 10], &labels);
        b.sample(vec![leaf, main], &[2, 20], &labels);
        b.sample(vec![main], &[1, 10], &labels);
        b.comment("rprof-bpf record -p 42");
        b.time(1, 2);
        b.build()
    }

    fn roundtrip(p: &Profile) -> Profile {
        let dir = std::env::temp_dir().join(format!("rprof-builder-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("p.pb.gz");
        write_profile(p, std::fs::File::create(&path).unwrap()).unwrap();
        let raw = std::fs::read(&path).unwrap();
        assert_eq!(&raw[..2], &[0x1f, 0x8b], "file is gzipped");
        let back = read_profile(&path).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        back
    }

    #[test]
    fn decodes_what_it_encodes() {
        let p = example();
        assert_eq!(roundtrip(&p), p);
    }

    #[test]
    fn string_table_starts_empty_and_indices_are_in_range() {
        let p = example();
        assert_eq!(p.string_table[0], "");
        let n = p.string_table.len() as i64;
        let mut idx = vec![p.drop_frames, p.default_sample_type];
        idx.extend(p.comment.iter().copied());
        for t in p.sample_type.iter().chain(p.period_type.iter()) {
            idx.extend([t.r#type, t.unit]);
        }
        for m in &p.mapping {
            idx.extend([m.filename, m.build_id]);
        }
        for f in &p.function {
            idx.extend([f.name, f.system_name, f.filename]);
        }
        for l in p.sample.iter().flat_map(|s| &s.label) {
            idx.extend([l.key, l.str, l.num_unit]);
        }
        assert!(idx.iter().all(|&i| (0..n).contains(&i)), "{idx:?}");
        let unique: HashSet<_> = p.string_table.iter().collect();
        assert_eq!(
            unique.len(),
            p.string_table.len(),
            "strings are interned once"
        );
    }

    #[test]
    fn ids_are_nonzero_unique_and_resolve() {
        let p = example();
        let ids = |v: Vec<u64>| {
            assert!(v.iter().all(|&id| id != 0));
            let set: HashSet<u64> = v.iter().copied().collect();
            assert_eq!(set.len(), v.len());
            set
        };
        let mappings = ids(p.mapping.iter().map(|m| m.id).collect());
        let locations = ids(p.location.iter().map(|l| l.id).collect());
        let functions = ids(p.function.iter().map(|f| f.id).collect());
        for l in &p.location {
            assert!(mappings.contains(&l.mapping_id));
            for line in &l.line {
                assert!(functions.contains(&line.function_id));
            }
        }
        for s in &p.sample {
            assert!(s.location_id.iter().all(|id| locations.contains(id)));
            assert_eq!(s.value.len(), p.sample_type.len());
        }
    }

    #[test]
    fn equal_samples_merge_and_locations_dedup() {
        let p = example();
        assert_eq!(p.sample.len(), 2);
        assert_eq!(p.sample[0].value, vec![3, 30]);
        assert_eq!(p.location.len(), 2, "one Location per (mapping, address)");
    }

    #[test]
    fn inlined_frames_are_lines_of_one_location_innermost_first() {
        let p = example();
        let leaf = &p.location[0];
        let names: Vec<&str> = leaf
            .line
            .iter()
            .map(|l| {
                let f = &p.function[l.function_id as usize - 1];
                p.string_table[f.name as usize].as_str()
            })
            .collect();
        assert_eq!(names, ["inlined_callee", "leaf"]);
    }

    #[test]
    fn labels_are_numeric_or_string_never_both() {
        let p = example();
        let s = &p.sample[0];
        let key = |l: &Label| p.string_table[l.key as usize].as_str();
        let pid = s.label.iter().find(|l| key(l) == "pid").unwrap();
        assert_eq!((pid.num, pid.str), (42, 0));
        let comm = s.label.iter().find(|l| key(l) == "comm").unwrap();
        assert_eq!(p.string_table[comm.str as usize], "app");
        assert_eq!(comm.num, 0);
    }

    #[test]
    fn period_and_sample_types_are_set() {
        let p = example();
        let st: Vec<(&str, &str)> = p
            .sample_type
            .iter()
            .map(|t| {
                (
                    p.string_table[t.r#type as usize].as_str(),
                    p.string_table[t.unit as usize].as_str(),
                )
            })
            .collect();
        assert_eq!(st, [("samples", "count"), ("cpu", "nanoseconds")]);
        let pt = p.period_type.unwrap();
        assert_eq!(p.string_table[pt.r#type as usize], "cpu");
        assert_eq!(p.period, 10_101_010);
        assert_eq!((p.time_nanos, p.duration_nanos), (1, 2));
    }

    #[test]
    #[should_panic(expected = "one value per sample type")]
    fn wrong_value_count_is_a_bug() {
        let mut b = ProfileBuilder::new(CPU, PERIOD, 1);
        b.sample(vec![], &[1], &[]);
    }
}
