/*
 * config_admin.c — configuration as Kafka's admin APIs see it: listing a
 * topic's configs or the engine's settings with their values in effect
 * and where each comes from (ts_config_list: DescribeConfigs), and
 * changing engine settings while running (ts_engine_alter_config: Kafka's
 * dynamic broker configs).
 *
 * A runtime change never edits the config the engine was opened with
 * (eng->set points into it and is read without locks): the first one
 * keeps it as cfg_opened and builds cfg = opened + cfg_dynamic; later ones
 * rebuild cfg. Only settings marked dynamic in the property table may
 * change, and those are read through each partition's resolved settings
 * (ts_eng_apply_settings re-resolves them under the locks).
 * Thread: any; takes engine->mu (then partition->mu).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "internal.h"

static int is_sensitive(const char *key)
{
    return strstr(key, "secret") || strstr(key, "token") || strstr(key, "password");
}

static int32_t kafka_type(const char *engine_type)
{
    if (!strcmp(engine_type, "int")) return TS_TK_LONG;
    if (!strcmp(engine_type, "bool")) return TS_TK_BOOLEAN;
    return TS_TK_STRING;
}

static void copy_str(char *dst, size_t n, const char *src)
{
    snprintf(dst, n, "%s", src ? src : "");
}

/* Where an engine setting comes from (engine->mu held). */
static uint32_t engine_flags(const ts_engine *eng, const char *key)
{
    const ts_config *opened = eng->cfg_opened ? eng->cfg_opened : eng->cfg;
    uint32_t f = 0;
    if (ts_config_is_set(opened, key)) f |= TS_CONFIG_SET;
    if (eng->cfg_dynamic && ts_config_is_set(eng->cfg_dynamic, key)) f |= TS_CONFIG_ALTERED;
    return f;
}

static void engine_row(const ts_engine *eng, const ts_config_key_info *ki, ts_config_row *r)
{
    copy_str(r->name, sizeof r->name, ki->name);
    copy_str(r->doc, sizeof r->doc, ki->doc);
    copy_str(r->default_value, sizeof r->default_value, ki->def);
    r->type = kafka_type(ki->type);
    r->flags = engine_flags(eng, ki->name) | (ki->dynamic ? TS_CONFIG_DYNAMIC : 0);
    if (is_sensitive(ki->name)) {
        r->flags |= TS_CONFIG_SENSITIVE;
        r->type = 9; /* PASSWORD */
        r->default_value[0] = 0;
        return;
    }
    copy_str(r->value, sizeof r->value, ts_config_get(eng->cfg, ki->name));
}

/* A topic config: its override, else its engine setting, else Kafka's
 * default (stored keys). engine->mu held. */
static void topic_row(const ts_engine *eng, const ts_topic_key *k, const ts_config *ovr,
                      ts_config_row *r)
{
    copy_str(r->name, sizeof r->name, k->name);
    copy_str(r->doc, sizeof r->doc, k->doc);
    r->type = k->type;
    const char *stored = k->engine_key ? k->engine_key : k->name;
    if (k->engine_key) {
        ts_config_key_info ki;
        copy_str(r->synonym, sizeof r->synonym, k->engine_key);
        if (ts_config_key_find(k->engine_key, &ki)) copy_str(r->default_value, sizeof r->default_value, ki.def);
        r->flags = engine_flags(eng, k->engine_key);
        copy_str(r->value, sizeof r->value, ts_config_get(eng->cfg, k->engine_key));
    } else {
        copy_str(r->default_value, sizeof r->default_value, k->def);
        copy_str(r->value, sizeof r->value, k->def);
        r->flags = TS_CONFIG_STORED;
    }
    if (ovr && ts_config_is_set(ovr, stored)) {
        r->flags |= TS_CONFIG_TOPIC_SET;
        copy_str(r->value, sizeof r->value, ts_config_get(ovr, stored));
    }
}

ts_status ts_config_list(ts_engine *eng, const char *topic, ts_config_row **rows, size_t *nrows,
                         char *errstr, size_t errlen)
{
    *rows = NULL;
    *nrows = 0;
    size_t n = 0;
    ts_config_key_info ki;
    if (topic)
        while (ts_topic_key_at(n)) n++;
    else
        while (ts_config_key_at(n, &ki)) n++;
    ts_config_row *r = calloc(n, sizeof(*r));
    ts_config *ovr = topic ? ts_eng_topic_overrides(eng, topic) : NULL;
    if (!r) {
        ts_config_destroy(ovr);
        return ts_err_set(errstr, errlen, TS_E_NOMEM, "out of memory");
    }
    pthread_mutex_lock(&eng->mu);
    for (size_t i = 0; i < n; i++) {
        if (topic)
            topic_row(eng, ts_topic_key_at(i), ovr, &r[i]);
        else if (ts_config_key_at(i, &ki))
            engine_row(eng, &ki, &r[i]);
    }
    pthread_mutex_unlock(&eng->mu);
    ts_config_destroy(ovr);
    *rows = r;
    *nrows = n;
    return TS_OK;
}

static ts_status check_dynamic(const char *key, char *errstr, size_t errlen)
{
    ts_config_key_info ki;
    if (!ts_config_key_find(key, &ki))
        return ts_err_set(errstr, errlen, TS_E_CONFIG, "unknown configuration key '%s'", key);
    if (!ki.dynamic)
        return ts_err_set(errstr, errlen, TS_E_CONFIG,
                          "'%s' cannot change while running (read-only): set it in the "
                          "properties file and restart",
                          key);
    return TS_OK;
}

/* The new set of runtime changes: the old one without the keys named,
 * then those named with a value. engine->mu held. */
static ts_status dynamic_build(ts_engine *eng, const char *const *keys, const char *const *values,
                               size_t n, ts_config **out, char *errstr, size_t errlen)
{
    ts_config *dyn = ts_config_create();
    if (!dyn) return ts_err_set(errstr, errlen, TS_E_NOMEM, "out of memory");
    /* Dynamic settings are all topic-overridable engine keys: the same copy. */
    if (eng->cfg_dynamic) ts_eng_copy_overrides(eng->cfg_dynamic, dyn, keys, n);
    ts_status st = TS_OK;
    for (size_t i = 0; i < n && !st; i++) {
        st = check_dynamic(keys[i], errstr, errlen);
        if (!st && values[i]) st = ts_config_set(dyn, keys[i], values[i], errstr, errlen);
    }
    if (st) {
        ts_config_destroy(dyn);
        return st;
    }
    *out = dyn;
    return TS_OK;
}

static void eff_set(const char *k, const char *v, void *opaque)
{
    ts_config_set(opaque, k, v, NULL, 0);
}

ts_status ts_engine_alter_config(ts_engine *eng, const char *const *keys,
                                 const char *const *values, size_t n, unsigned flags,
                                 char *errstr, size_t errlen)
{
    pthread_mutex_lock(&eng->mu);
    ts_config *dyn = NULL;
    ts_status st = dynamic_build(eng, keys, values, n, &dyn, errstr, errlen);
    ts_config *opened = eng->cfg_opened ? eng->cfg_opened : eng->cfg;
    ts_config *eff = st ? NULL : ts_config_dup(opened);
    if (!st && !eff) st = ts_err_set(errstr, errlen, TS_E_NOMEM, "out of memory");
    if (st || (flags & TS_TOPIC_CONFIG_VALIDATE_ONLY)) {
        pthread_mutex_unlock(&eng->mu);
        ts_config_destroy(dyn);
        ts_config_destroy(eff);
        return st;
    }
    ts_config_foreach_set(dyn, eff_set, eff);
    if (!eng->cfg_opened)
        eng->cfg_opened = eng->cfg;
    else
        ts_config_destroy(eng->cfg);
    eng->cfg = eff;
    ts_config_destroy(eng->cfg_dynamic);
    eng->cfg_dynamic = dyn;
    ts_eng_apply_settings(eng, NULL);
    pthread_mutex_unlock(&eng->mu);
    return TS_OK;
}
