"""When things happen: the daily send and collections (`daemon`, APScheduler), what each
run does (`daily`), readers' own delivery times (`due`, `localtime`) and what `digest
status` reports (`status`)."""
