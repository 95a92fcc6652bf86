//! The text query language: every construct, and where each error points.

use helios_store::query::{
    parse_text, CompareOp, FieldPath, Filter, Literal, RegexPattern, MAX_TEXT_DEPTH,
    MAX_TEXT_QUERY_BYTES, MAX_TEXT_TERMS,
};
use helios_store::ObjectId;

fn path(dotted: &str) -> FieldPath {
    FieldPath::parse(dotted).unwrap()
}

fn s(text: &str) -> Literal {
    Literal::String(text.to_owned())
}

fn eq(field: &str, value: Literal) -> Filter {
    Filter::eq(path(field), value)
}

fn cmp(field: &str, op: CompareOp, value: Literal) -> Filter {
    Filter::compare(path(field), op, value)
}

fn parse(input: &str) -> Filter {
    parse_text(input).unwrap_or_else(|error| panic!("{input:?}: {error}"))
}

/// The error's offset and message.
fn error(input: &str) -> (usize, String) {
    let error = parse_text(input).expect_err(input);
    (error.offset, error.message)
}

fn regex(field: &str, source: &str) -> Filter {
    Filter::Regex {
        path: path(field),
        pattern: RegexPattern::new(source).unwrap(),
    }
}

// ---- constructs ----

#[test]
fn empty_query_matches_everything() {
    assert_eq!(parse(""), Filter::all());
    assert_eq!(parse("   \t "), Filter::all());
}

#[test]
fn word_value_is_string_equality() {
    assert_eq!(parse("plan:pro"), eq("plan", s("pro")));
}

#[test]
fn equals_sign_is_the_same_as_colon() {
    assert_eq!(parse("plan=pro"), eq("plan", s("pro")));
}

#[test]
fn number_value_matches_the_number_or_the_same_text() {
    assert_eq!(
        parse("code:200"),
        Filter::In {
            path: path("code"),
            values: vec![Literal::Int(200), s("200")]
        }
    );
    assert_eq!(
        parse("ratio:-2.5e3"),
        Filter::In {
            path: path("ratio"),
            values: vec![Literal::Float(-2500.0), s("-2.5e3")]
        }
    );
}

#[test]
fn booleans_and_null_match_the_json_value_or_the_same_text() {
    assert_eq!(
        parse("paid:true"),
        Filter::In {
            path: path("paid"),
            values: vec![Literal::Bool(true), s("true")]
        }
    );
    assert_eq!(
        parse("coupon:null"),
        Filter::In {
            path: path("coupon"),
            values: vec![Literal::Null, s("null")]
        }
    );
}

#[test]
fn non_json_numbers_stay_strings() {
    for text in ["inf", "NaN", "0x10", "1_000", "1.", ".5", "+1"] {
        assert_eq!(parse(&format!("v:{text}")), eq("v", s(text)), "{text}");
    }
}

#[test]
fn quoted_value_is_exactly_that_string() {
    assert_eq!(
        parse(r#"name:"Ada Lovelace""#),
        eq("name", s("Ada Lovelace"))
    );
    assert_eq!(parse(r#"code:"200""#), eq("code", s("200")));
    assert_eq!(
        parse(r#"q:"say \"hi\" \\ ok""#),
        eq("q", s(r#"say "hi" \ ok"#))
    );
}

#[test]
fn comparisons_with_numbers_are_numeric() {
    assert_eq!(
        parse("latency_ms>250"),
        cmp("latency_ms", CompareOp::Gt, Literal::Int(250))
    );
    assert_eq!(
        parse("latency_ms>=250"),
        cmp("latency_ms", CompareOp::Gte, Literal::Int(250))
    );
    assert_eq!(
        parse("latency_ms<0.5"),
        cmp("latency_ms", CompareOp::Lt, Literal::Float(0.5))
    );
    assert_eq!(
        parse("latency_ms<=-1"),
        cmp("latency_ms", CompareOp::Lte, Literal::Int(-1))
    );
}

#[test]
fn comparisons_with_words_or_quotes_are_on_strings() {
    assert_eq!(
        parse("version>=v2"),
        cmp("version", CompareOp::Gte, s("v2"))
    );
    assert_eq!(
        parse(r#"version<"10""#),
        cmp("version", CompareOp::Lt, s("10"))
    );
}

#[test]
fn not_equal_is_the_negation_of_equal() {
    assert_eq!(parse("plan!=pro"), Filter::not(eq("plan", s("pro"))));
}

#[test]
fn trailing_star_is_a_prefix() {
    assert_eq!(
        parse("host:web-1*"),
        Filter::Prefix {
            path: path("host"),
            prefix: "web-1".to_owned()
        }
    );
}

#[test]
fn stars_on_both_sides_are_contains() {
    assert_eq!(
        parse("email:*@example.com*"),
        Filter::Contains {
            path: path("email"),
            text: "@example.com".to_owned()
        }
    );
}

#[test]
fn leading_star_is_a_suffix_regex_with_the_text_escaped() {
    assert_eq!(parse("file:*.tar.gz"), regex("file", r"\.tar\.gz$"));
}

#[test]
fn lone_star_is_exists_and_its_negation_is_missing() {
    assert_eq!(
        parse("coupon:*"),
        Filter::Exists {
            path: path("coupon"),
            exists: true
        }
    );
    assert_eq!(
        parse("-coupon:*"),
        Filter::not(Filter::Exists {
            path: path("coupon"),
            exists: true
        })
    );
    assert_eq!(
        parse("coupon!=*"),
        Filter::Exists {
            path: path("coupon"),
            exists: false
        }
    );
}

#[test]
fn slashes_are_a_regex_with_flags_inline() {
    assert_eq!(parse("msg:/time(d)?out/"), regex("msg", "time(d)?out"));
    assert_eq!(parse("msg:/^err/im"), regex("msg", "(?im)^err"));
}

#[test]
fn escaped_slash_in_a_regex_is_a_slash() {
    assert_eq!(parse(r"path:/^\/api\/v1/"), regex("path", "^/api/v1"));
}

#[test]
fn dotted_field_is_a_nested_path() {
    assert_eq!(
        parse("user.address.city:Paris"),
        eq("user.address.city", s("Paris"))
    );
}

#[test]
fn ts_and_recv_take_rfc3339_or_epoch_ms_dates() {
    assert_eq!(
        parse("ts>=2026-11-30T19:21:43Z"),
        cmp("ts", CompareOp::Gte, Literal::Date(1_796_066_503_000))
    );
    assert_eq!(
        parse("recv<1796066503000"),
        cmp("recv", CompareOp::Lt, Literal::Date(1_796_066_503_000))
    );
    assert_eq!(
        parse(r#"ts:"2026-11-30T19:21:43.001+00:00""#),
        eq("ts", Literal::Date(1_796_066_503_001))
    );
}

#[test]
fn id_takes_an_object_id() {
    let id = "6b0dccc70102030405000012";
    assert_eq!(
        parse(&format!("_id:{id}")),
        eq("_id", Literal::Id(ObjectId::parse_hex(id).unwrap()))
    );
}

#[test]
fn juxtaposition_is_and() {
    assert_eq!(
        parse("type:signup plan:pro latency_ms>250 NOT country:US"),
        Filter::And(vec![
            eq("type", s("signup")),
            eq("plan", s("pro")),
            cmp("latency_ms", CompareOp::Gt, Literal::Int(250)),
            Filter::not(eq("country", s("US"))),
        ])
    );
}

#[test]
fn explicit_and_is_the_same_as_juxtaposition() {
    assert_eq!(parse("a:x AND b:y"), parse("a:x b:y"));
}

#[test]
fn and_binds_tighter_than_or() {
    assert_eq!(
        parse("a:x b:y OR c:z"),
        Filter::Or(vec![
            Filter::And(vec![eq("a", s("x")), eq("b", s("y"))]),
            eq("c", s("z")),
        ])
    );
}

#[test]
fn parentheses_group() {
    assert_eq!(
        parse("a:x (b:y OR c:z)"),
        Filter::And(vec![
            eq("a", s("x")),
            Filter::Or(vec![eq("b", s("y")), eq("c", s("z"))]),
        ])
    );
}

#[test]
fn minus_and_not_negate_terms_and_groups() {
    assert_eq!(parse("-a:x"), Filter::not(eq("a", s("x"))));
    assert_eq!(parse("NOT a:x"), Filter::not(eq("a", s("x"))));
    assert_eq!(
        parse("-(a:x OR b:y)"),
        Filter::not(Filter::Or(vec![eq("a", s("x")), eq("b", s("y"))]))
    );
    assert_eq!(
        parse("NOT NOT a:x"),
        Filter::not(Filter::not(eq("a", s("x"))))
    );
}

#[test]
fn lower_case_keywords_are_not_keywords() {
    let (offset, message) = error("a:x or b:y");
    assert_eq!(offset, 4);
    assert!(message.contains("bare word `or`"), "{message}");
}

#[test]
fn values_may_contain_colons_and_minus_signs() {
    assert_eq!(
        parse("url:http://x:8080/a-b"),
        eq("url", s("http://x:8080/a-b"))
    );
}

#[test]
fn unicode_values_and_fields_are_kept() {
    assert_eq!(parse("ville:Genève"), eq("ville", s("Genève")));
    assert_eq!(parse("é:ü"), eq("é", s("ü")));
}

// ---- errors and their offsets ----

#[test]
fn bare_word_is_refused_at_its_offset() {
    let (offset, message) = error("plan:pro timeout");
    assert_eq!(offset, 9);
    assert!(message.contains("field:*timeout*"), "{message}");
}

#[test]
fn missing_value_points_after_the_operator() {
    assert_eq!(error("plan:").0, 5);
    assert_eq!(error("plan: x:y").0, 5);
    assert_eq!(error("a:x latency_ms>").0, 15);
    assert_eq!(error("(plan:)").0, 6);
}

#[test]
fn missing_field_name_points_at_the_operator() {
    let (offset, message) = error("a:x :pro");
    assert_eq!(offset, 4);
    assert!(message.contains("field name"), "{message}");
}

/// The error of `input`, which must be an unknown-operator error.
fn unknown_operator(input: &str) -> (usize, String) {
    let (offset, message) = error(input);
    assert!(message.contains("unknown operator"), "{input:?}: {message}");
    (offset, message)
}

#[test]
fn doubled_greater_than_is_refused_at_the_second_one() {
    let (offset, message) = unknown_operator("latency_ms>>100");
    assert_eq!(offset, 11);
    assert!(message.contains("`>>`"), "{message}");
    assert!(
        message.contains("quote a value that starts with `>`"),
        "{message}"
    );
}

#[test]
fn doubled_less_than_is_refused_at_the_second_one() {
    assert_eq!(unknown_operator("a<<1").0, 2);
}

#[test]
fn doubled_equals_is_refused_at_the_second_one() {
    assert_eq!(unknown_operator("a==1").0, 2);
}

#[test]
fn reversed_greater_or_equal_is_refused_at_the_greater_than() {
    assert_eq!(unknown_operator("a=>1").0, 2);
}

#[test]
fn reversed_less_or_equal_is_refused_at_the_less_than() {
    assert_eq!(unknown_operator("a=<1").0, 2);
}

#[test]
fn greater_then_less_is_refused_at_the_less_than() {
    assert_eq!(unknown_operator("a><1").0, 2);
}

#[test]
fn sql_not_equal_is_refused_at_its_greater_than() {
    assert_eq!(unknown_operator("a<>1").0, 2);
}

#[test]
fn colon_then_comparison_is_refused_at_the_comparison() {
    assert_eq!(unknown_operator("a:>1").0, 2);
}

#[test]
fn comparison_then_colon_is_refused_at_the_colon() {
    assert_eq!(unknown_operator("a>=:1").0, 3);
}

#[test]
fn doubled_bang_is_refused_at_the_first_one() {
    let (offset, message) = unknown_operator("a!!=1");
    assert_eq!(offset, 1);
    assert!(message.contains("`!!=`"), "{message}");
    assert!(
        !message.contains("quote"),
        "no operator to quote after: {message}"
    );
}

#[test]
fn bang_without_equals_is_refused_at_the_bang() {
    assert_eq!(unknown_operator("a!1").0, 1);
}

#[test]
fn unknown_operator_offset_counts_from_where_the_term_starts() {
    assert_eq!(unknown_operator("type:signup (b:x OR latency_ms>>1)").0, 31);
}

#[test]
fn missing_field_before_an_unknown_operator_is_reported_first() {
    let (offset, message) = error("a:x >>1");
    assert_eq!(offset, 4);
    assert!(message.contains("field name"), "{message}");
}

#[test]
fn an_equality_value_may_start_with_a_colon() {
    assert_eq!(parse("ip:::1"), eq("ip", s("::1")));
    assert_eq!(parse("ip=::1"), eq("ip", s("::1")));
}

#[test]
fn quoted_values_may_start_with_operator_characters() {
    assert_eq!(parse(r#"msg:">>""#), eq("msg", s(">>")));
    assert_eq!(parse(r#"msg:"=SUM(A1)""#), eq("msg", s("=SUM(A1)")));
    assert_eq!(parse(r#"v>">1""#), cmp("v", CompareOp::Gt, s(">1")));
    assert_eq!(parse(r#"v!="<b>""#), Filter::not(eq("v", s("<b>"))));
}

#[test]
fn operator_characters_inside_an_unquoted_value_are_kept() {
    assert_eq!(parse("expr:a>=b"), eq("expr", s("a>=b")));
}

#[test]
fn invalid_field_path_points_at_the_field() {
    assert_eq!(error("a:x b..c:y").0, 4);
    assert_eq!(error("$where:1").0, 0);
    assert_eq!(error("items.0:1").0, 0);
}

#[test]
fn unterminated_quote_points_at_the_opening_quote() {
    assert_eq!(error(r#"a:x name:"Ada"#).0, 9);
    assert_eq!(error(r#"name:"Ada\""#).0, 5);
}

#[test]
fn quoted_string_without_a_field_is_refused_where_it_starts() {
    assert_eq!(error(r#"a:x "free text""#).0, 4);
}

#[test]
fn unterminated_regex_points_at_its_slash() {
    assert_eq!(error("a:x msg:/abc").0, 8);
}

#[test]
fn invalid_regex_points_at_its_slash() {
    let (offset, message) = error("msg:/a(b/");
    assert_eq!(offset, 4);
    assert!(message.contains("regular expression"), "{message}");
}

#[test]
fn unknown_regex_flag_points_at_the_flag() {
    assert_eq!(error("msg:/a/ig").0, 8);
}

#[test]
fn regex_after_a_comparison_is_refused_at_the_value() {
    assert_eq!(error("msg>/a/").0, 4);
}

#[test]
fn wildcard_in_the_middle_is_refused_at_the_value() {
    assert_eq!(error("a:x host:we*b").0, 9);
    assert_eq!(error("host:**").0, 5);
}

#[test]
fn wildcard_with_a_comparison_is_refused_at_the_value() {
    assert_eq!(error("host>web*").0, 5);
    assert_eq!(error("host>*").0, 5);
}

#[test]
fn unexpected_closing_parenthesis_points_at_it() {
    assert_eq!(error("a:x)").0, 3);
    assert_eq!(error(") a:x").0, 0);
}

#[test]
fn unclosed_parenthesis_points_at_it() {
    assert_eq!(error("a:x (b:y OR c:z").0, 4);
    assert_eq!(error("a:x (").0, 4);
}

#[test]
fn empty_parentheses_point_at_the_opening_one() {
    assert_eq!(error("a:x ( )").0, 4);
}

#[test]
fn dangling_or_points_at_the_or() {
    assert_eq!(error("a:x OR").0, 4);
    assert_eq!(error("OR a:x").0, 0);
    assert_eq!(error("a:x OR OR b:y").0, 4);
    assert_eq!(error("(a:x OR) b:y").0, 5);
}

#[test]
fn dangling_and_points_at_the_and() {
    assert_eq!(error("a:x AND").0, 4);
    assert_eq!(error("AND a:x").0, 0);
    assert_eq!(error("a:x AND OR b:y").0, 4);
}

#[test]
fn dangling_not_points_at_the_not() {
    assert_eq!(error("a:x NOT").0, 4);
    assert_eq!(error("a:x NOT )").0, 4);
}

#[test]
fn lone_minus_points_at_it() {
    assert_eq!(error("a:x - b:y").0, 4);
    assert_eq!(error("a:x -").0, 4);
}

#[test]
fn bad_date_points_at_the_value() {
    let (offset, message) = error("a:x ts>yesterday");
    assert_eq!(offset, 7);
    assert!(message.contains("date"), "{message}");
}

#[test]
fn bad_id_points_at_the_value() {
    assert_eq!(error("_id:xyz").0, 4);
}

#[test]
fn too_long_query_is_refused_at_the_limit() {
    let long = format!("a:{}", "x".repeat(MAX_TEXT_QUERY_BYTES));
    assert_eq!(error(&long).0, MAX_TEXT_QUERY_BYTES);
}

#[test]
fn too_many_terms_are_refused_at_the_first_one_over() {
    let input = vec!["a:x"; MAX_TEXT_TERMS + 1].join(" ");
    let (offset, message) = error(&input);
    assert_eq!(offset, MAX_TEXT_TERMS * 4);
    assert!(message.contains("conditions"), "{message}");
    assert!(parse_text(&vec!["a:x"; MAX_TEXT_TERMS].join(" ")).is_ok());
}

#[test]
fn too_deep_nesting_is_refused_at_the_level_over() {
    let depth = MAX_TEXT_DEPTH + 1;
    let input = format!("{}a:x{}", "(".repeat(depth), ")".repeat(depth));
    assert_eq!(error(&input).0, MAX_TEXT_DEPTH);
    let ok = format!(
        "{}a:x{}",
        "(".repeat(MAX_TEXT_DEPTH),
        ")".repeat(MAX_TEXT_DEPTH)
    );
    assert!(parse_text(&ok).is_ok());
}

#[test]
fn offsets_are_byte_offsets_after_multibyte_text() {
    // "é" is two bytes: the bare word starts at byte 8, not char 7.
    assert_eq!(error("v:Genè oops").0, 8);
    assert_eq!(error("v:é oops").0, 5);
}

#[test]
fn more_regular_expressions_than_the_limit_are_refused() {
    use helios_store::query::MAX_REGEXES_PER_FILTER;
    let within: Vec<String> = (0..MAX_REGEXES_PER_FILTER)
        .map(|i| format!("f{i}:/a{i}/"))
        .collect();
    assert!(parse_text(&within.join(" OR ")).is_ok());
    let over: Vec<String> = (0..=MAX_REGEXES_PER_FILTER)
        .map(|i| format!("f{i}:/a{i}/"))
        .collect();
    let error = parse_text(&over.join(" OR ")).unwrap_err();
    assert!(error.message.contains("regular expressions"), "{error}");
}
