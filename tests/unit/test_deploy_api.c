/*
 * test_deploy_api.c - the pure parts of the deployment API client: judging error texts and
 * answers, the tolerant readers of register_component and refresh_token answers, and the
 * registration body (KASM_INTERFACE.md section 6).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <cJSON.h>

#include "unit.h"

#include "api.h"

static void error_texts_are_classified(void **state)
{
    static const struct {
        const char *msg;
        int code;
    } cases[] = {
        {"The JWT token has expired", ERR_EXPIRED},
        {"Expired JWT utilized on register_component", ERR_EXPIRED},
        {"Token has been expired beyond the configured refresh period", ERR_AUTH},
        {"Access Denied!", ERR_AUTH},
        {"Something new", ERR_AUTH},
        {NULL, ERR_AUTH},
    };
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        assert_int_equal(dapi_classify_error(cases[i].msg), cases[i].code);
}

static void answers_are_judged(void **state)
{
    static const struct {
        int status;
        const char *body;
        int code;
        const char *needle;
    } cases[] = {
        {200, "{\"ok\": true}", 0, NULL},
        {200, "{\"error_message\": \"Access Denied!\"}", ERR_AUTH,
         "refused the call: Access Denied!"},
        {403, "{\"error_message\": \"The JWT token has expired\"}", ERR_EXPIRED, "has expired"},
        {500, "Internal Server Error", ERR_NETWORK, "h.example:443 answered HTTP 500 to the call"},
        {503, "", ERR_NETWORK, "answered HTTP 503"},
        {401, "{}", ERR_AUTH, "HTTP 401"},
        {404, "{}", ERR_PROTOCOL, "HTTP 404"},
        {200, "{\"ok\": tr", ERR_PROTOCOL, "not JSON"},
    };
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct err e = ERR_INIT;
        void *json = NULL;
        int rc = dapi_check_answer("h.example", 443, "the call", cases[i].status, cases[i].body,
                                   strlen(cases[i].body), &json, &e);
        if (rc != cases[i].code)
            fail_msg("case %zu: got %d (%s), want %d", i, rc, e.msg, cases[i].code);
        if (cases[i].needle && !strstr(e.msg, cases[i].needle))
            fail_msg("case %zu: '%s' lacks '%s'", i, e.msg, cases[i].needle);
        assert_true(rc == 0 ? json != NULL : json == NULL);
        cJSON_Delete(json);
    }
}

static void agent_info_is_read(void **state)
{
    const char *body = "{\"operational_status\": \"running\", \"server_agent\": {"
                       "\"agent_jwt_token\": \"t1\", \"public_jwt_cert\": \"JWT PEM\","
                       "\"server_cert\": \"CERT\", \"server_key\": \"KEY\","
                       "\"multi_user\": true, \"user_sso\": \"false\"}}";
    const char *flat = "{\"agent_jwt_token\": \"t2\", \"multi_user\": 0, \"user_sso\": 1}";
    struct dapi_agent_info info;
    struct err e = ERR_INIT;
    (void)state;

    assert_int_equal(dapi_parse_agent_info(body, strlen(body), &info, &e), 0);
    assert_string_equal(info.agent_jwt_token, "t1");
    assert_string_equal(info.public_jwt_cert, "JWT PEM");
    assert_string_equal(info.server_cert, "CERT");
    assert_string_equal(info.server_key, "KEY");
    assert_true(info.have_flags);
    assert_int_equal(info.multi_user, 1);
    assert_int_equal(info.user_sso, 0);
    dapi_agent_info_free(&info);

    assert_int_equal(dapi_parse_agent_info(flat, strlen(flat), &info, &e), 0);
    assert_string_equal(info.agent_jwt_token, "t2");
    assert_null(info.server_cert);
    assert_true(info.have_flags && !info.multi_user && info.user_sso);
    dapi_agent_info_free(&info);

    assert_int_equal(
        dapi_parse_agent_info("{\"server_agent\": {\"multi_user\": true}}", 38, &info, &e),
        ERR_PROTOCOL);
    assert_null(info.agent_jwt_token);
    assert_int_equal(dapi_parse_agent_info("[1]", 3, &info, &e), ERR_PROTOCOL);
}

static void refresh_reply_tolerant_reader(void **state)
{
    static const struct {
        const char *body;
        const char *token; /* NULL: refused */
    } cases[] = {
        {"{\"agent_jwt_token\": \"a\"}", "a"},
        {"{\"auth_token\": \"b\"}", "b"},
        {"{\"token\": \"c\"}", "c"},
        {"{\"server_agent\": {\"agent_jwt_token\": \"d\"}}", "d"},
        {"{\"server_agent\": {\"auth_token\": \"e\"}}", "e"},
        {"{\"server_agent\": {\"token\": \"f\"}}", "f"},
        {"{\"token\": \"top\", \"server_agent\": {\"agent_jwt_token\": \"nested\"}}", "top"},
        {"{\"auth_token\": \"\", \"token\": \"g\"}", "g"},
        {"{\"agent_jwt_token\": 5}", NULL},
        {"{\"other\": \"x\"}", NULL},
        {"[]", NULL},
        {"{\"token\": ", NULL},
    };
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct err e = ERR_INIT;
        char *tok = NULL;
        int rc = dapi_parse_refresh(cases[i].body, strlen(cases[i].body), &tok, &e);
        if (cases[i].token) {
            if (rc != 0)
                fail_msg("case %zu: %s", i, e.msg);
            assert_string_equal(tok, cases[i].token);
        } else {
            assert_int_equal(rc, ERR_PROTOCOL);
            assert_null(tok);
        }
        free(tok);
    }
}

static void registration_body_shape(void **state)
{
    char *text;
    cJSON *o, *tc;
    (void)state;

    text = dapi_register_body("REG", "abc", "host.example.com", "registering");
    assert_non_null(text);
    o = cJSON_Parse(text);
    assert_string_equal(cJSON_GetObjectItem(o, "type")->valuestring, "server_agent");
    assert_string_equal(cJSON_GetObjectItem(o, "registration_token")->valuestring, "REG");
    tc = cJSON_GetObjectItem(o, "target_component");
    assert_string_equal(cJSON_GetObjectItem(tc, "id")->valuestring, "abc");
    assert_string_equal(cJSON_GetObjectItem(tc, "type")->valuestring, "server_agent");
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(tc, "auto_configure")));
    assert_string_equal(cJSON_GetObjectItem(tc, "hostname")->valuestring, "host.example.com");
    assert_string_equal(cJSON_GetObjectItem(tc, "service_status")->valuestring, "registering");
    assert_int_equal(cJSON_GetArraySize(o), 3);
    assert_int_equal(cJSON_GetArraySize(tc), 5);
    cJSON_Delete(o);
    free(text);

    /* check-in: no registration_token; no id when none is known */
    text = dapi_register_body(NULL, "", "h", "starting");
    o = cJSON_Parse(text);
    assert_null(cJSON_GetObjectItem(o, "registration_token"));
    tc = cJSON_GetObjectItem(o, "target_component");
    assert_null(cJSON_GetObjectItem(tc, "id"));
    assert_string_equal(cJSON_GetObjectItem(tc, "service_status")->valuestring, "starting");
    cJSON_Delete(o);
    free(text);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(error_texts_are_classified),
        cmocka_unit_test(answers_are_judged),
        cmocka_unit_test(agent_info_is_read),
        cmocka_unit_test(refresh_reply_tolerant_reader),
        cmocka_unit_test(registration_body_shape),
    };
    return UNIT_RUN("deploy_api", tests, NULL, NULL);
}
