"""Text every stage shares: cleaning untrusted text (`clean`), telling languages
(`language`), page furniture (`boilerplate`), the interface's words in the site's
language (`i18n`) and story times worded at send time (`storytime`)."""
