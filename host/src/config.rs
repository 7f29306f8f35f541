//! Per-provider configuration: `--provider-config TYPE:KEY=VALUE`.

use std::collections::BTreeMap;

/// Key/value settings for each provider type, in the order given.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProviderConfig {
    by_type: BTreeMap<String, Vec<(String, String)>>,
}

impl ProviderConfig {
    /// Parses `TYPE:KEY=VALUE` and adds it.
    ///
    /// Errors: a malformed spec, or a key given twice for one type.
    pub fn add(&mut self, spec: &str) -> Result<(), String> {
        self.insert(parse_spec(spec)?)
    }

    /// Adds a setting parsed by [`parse_spec`].
    ///
    /// Errors: the type already has this key. Not last-wins: a key given
    /// twice is a mistake in a command line or in
    /// `/etc/default/vif-plug-host`, and which value the provider would get
    /// should not depend on the order.
    pub fn insert(&mut self, setting: Setting) -> Result<(), String> {
        let entries = self.by_type.entry(setting.type_name.clone()).or_default();
        match entries.iter().find(|(k, _)| *k == setting.key) {
            Some((_, first)) => Err(format!(
                "--provider-config {t}:{k} is given twice ({k}={first}, then {k}={v}): give each key once",
                t = setting.type_name,
                k = setting.key,
                v = setting.value
            )),
            None => {
                entries.push((setting.key, setting.value));
                Ok(())
            }
        }
    }

    /// The settings for `type_name` (empty if none).
    pub fn for_type(&self, type_name: &str) -> &[(String, String)] {
        self.by_type.get(type_name).map_or(&[], Vec::as_slice)
    }

    /// Types that have settings.
    pub fn types(&self) -> impl Iterator<Item = &str> {
        self.by_type.keys().map(String::as_str)
    }
}

/// One `TYPE:KEY=VALUE` setting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting {
    /// Provider type.
    pub type_name: String,
    /// Key.
    pub key: String,
    /// Value (may be empty).
    pub value: String,
}

/// Parses `TYPE:KEY=VALUE`; also clap's value parser.
pub fn parse_spec(spec: &str) -> Result<Setting, String> {
    let (type_name, setting) = spec
        .split_once(':')
        .ok_or_else(|| format!("{spec:?}: expected TYPE:KEY=VALUE (no ':')"))?;
    let (key, value) = setting
        .split_once('=')
        .ok_or_else(|| format!("{spec:?}: expected TYPE:KEY=VALUE (no '=')"))?;
    if type_name.is_empty() || key.is_empty() {
        return Err(format!("{spec:?}: TYPE and KEY must not be empty"));
    }
    Ok(Setting {
        type_name: type_name.to_owned(),
        key: key.to_owned(),
        value: value.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_groups_by_type() {
        let mut c = ProviderConfig::default();
        c.add("devlink:sysfs-root=/tmp/sys").unwrap();
        c.add("devlink:filter=pci/0000:03:00.0").unwrap();
        c.add("dummy:x=").unwrap();
        assert_eq!(
            c.for_type("devlink"),
            &[
                ("sysfs-root".to_owned(), "/tmp/sys".to_owned()),
                ("filter".to_owned(), "pci/0000:03:00.0".to_owned())
            ]
        );
        assert_eq!(c.for_type("dummy"), &[("x".to_owned(), String::new())]);
        assert!(c.for_type("other").is_empty());
    }

    #[test]
    fn a_key_given_twice_is_an_error() {
        let mut c = ProviderConfig::default();
        c.add("t:k=1").unwrap();
        assert_eq!(
            c.add("t:k=2").unwrap_err(),
            "--provider-config t:k is given twice (k=1, then k=2): give each key once"
        );
        assert_eq!(c.for_type("t"), &[("k".to_owned(), "1".to_owned())]);
        // The same key for another type is another setting.
        c.add("u:k=2").unwrap();
    }

    #[test]
    fn malformed_specs_are_refused() {
        let mut c = ProviderConfig::default();
        assert!(c.add("no-colon").unwrap_err().contains("no ':'"));
        assert!(c.add("t:no-equals").unwrap_err().contains("no '='"));
        assert!(c.add(":k=v").is_err());
        assert!(c.add("t:=v").is_err());
    }
}
