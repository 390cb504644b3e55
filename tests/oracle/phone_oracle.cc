// phone_oracle - differential test of crm_norm's phone validation against
// libphonenumber (Debian's libphonenumber-dev 8.12.57).
//
//   crm-phone-oracle phones.txt differences.txt   run the test
//   crm-phone-oracle --dump phones.txt            print "input\tours\tlib"
//                                                 for every input
//
// For every input line of phones.txt both sides give a verdict string:
//
//   ours (crm_norm_mobile, then crm_norm_landline when the mobile check
//   says plain "invalid"):
//     "mobile <11 digits>"           crm_norm_mobile OK
//     "fixed <area+local>[;ext=E]"   crm_norm_landline OK (no trunk 0)
//     "business <10 digits>[;ext=E]" crm_norm_landline BUSINESS_NUMBER
//     "other_calling_code +<cc>"     written with a calling code other than
//                                    +86 (crm_norm_phone_calling_code); kept
//                                    as given, not checked against its plan
//     "invalid:<code>"               anything else; <code> is
//                                    crm_norm_code_str() of the deciding
//                                    check (masked, placeholder,
//                                    not_in_numbering_plan, not_cn_number,
//                                    missing_area_code, invalid, empty...)
//
//   libphonenumber (Parse with default region "CN", IsValidNumber,
//   GetNumberType):
//     "<type> <national significant number>[;ext=E]" for a valid CN number,
//       type one of mobile, fixed, fixed_or_mobile, toll_free, shared_cost,
//       premium_rate, voip, uan, personal_number, pager, voicemail, unknown
//     "foreign:<region> +<cc> <type> <nsn>[;ext=E]"  valid, not a CN number
//     "invalid"                               parsed, IsValidNumber false
//     "parse_error:<ErrorType>"               Parse failed
//
// The two agree when both are invalid (any invalid:*, "invalid" or
// parse_error:*), or when both are valid with the same type class and the
// same digits and extension. Type classes: mobile; fixed; business =
// toll_free/shared_cost/premium_rate/uan; fixed_or_mobile matches mobile or
// fixed. A valid foreign number agrees only with our other_calling_code of
// the same calling code; our other_calling_code also agrees with an invalid
// verdict (neither side calls it a Chinese number; we do not check other
// plans) and disagrees with a valid CN one.
//
// Every disagreement must be listed in differences.txt as
//   <input>\t<ours>\t<libphonenumber>\t<why>
// with both verdict strings exactly as computed. The test fails on an
// unlisted difference, on a listed entry whose verdicts changed, on a
// listed entry that now agrees (stale), on a listed input missing from
// phones.txt, and on malformed or duplicate lines.

#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <map>
#include <set>
#include <string>
#include <vector>

#include <phonenumbers/phonenumber.pb.h>
#include <phonenumbers/phonenumberutil.h>

#include "crm_norm.h"

using i18n::phonenumbers::PhoneNumber;
using i18n::phonenumbers::PhoneNumberUtil;

namespace {

struct Line {
    std::string text;
    int lineno;
};

// Lines of a file, without the newline (and a CR before it); blank lines and
// lines starting with '#' are skipped. Returns false when unreadable.
bool read_lines(const char *path, std::vector<Line> &out)
{
    std::ifstream in(path);
    if (!in) {
        std::cerr << "oracle: cannot read " << path << "\n";
        return false;
    }
    std::string s;
    int lineno = 0;
    while (std::getline(in, s)) {
        lineno++;
        if (!s.empty() && s.back() == '\r')
            s.pop_back();
        if (s.empty() || s[0] == '#')
            continue;
        out.push_back({s, lineno});
    }
    return true;
}

std::string with_ext(std::string s, const char *ext)
{
    if (ext && *ext) {
        s += ";ext=";
        s += ext;
    }
    return s;
}

std::string our_verdict(const std::string &input)
{
    char mobile[CRM_NORM_MOBILE_SZ];
    crm_norm_code_t rc = crm_norm_mobile(input.c_str(), mobile);
    if (rc == CRM_NORM_OK)
        return std::string("mobile ") + mobile;
    if (rc == CRM_NORM_OTHER_CALLING_CODE)
        return "other_calling_code +" + std::to_string(crm_norm_phone_calling_code(input.c_str()));
    // MASKED, PLACEHOLDER and NOT_IN_PLAN mean "this is a mobile number, and
    // a bad one": the landline check is not asked. EMPTY, TOO_LONG and
    // BAD_ENCODING are the same for both checks.
    if (rc != CRM_NORM_INVALID)
        return std::string("invalid:") + crm_norm_code_str(rc);

    crm_landline_t ll;
    rc = crm_norm_landline(input.c_str(), &ll);
    if (rc == CRM_NORM_OK)
        return with_ext(std::string("fixed ") + ll.area + ll.local, ll.ext);
    if (rc == CRM_NORM_BUSINESS_NUMBER)
        return with_ext(std::string("business ") + ll.local, ll.ext);
    if (rc == CRM_NORM_OTHER_CALLING_CODE)
        return "other_calling_code +" + std::to_string(crm_norm_phone_calling_code(input.c_str()));
    return std::string("invalid:") + crm_norm_code_str(rc);
}

const char *type_name(PhoneNumberUtil::PhoneNumberType t)
{
    switch (t) {
    case PhoneNumberUtil::FIXED_LINE: return "fixed";
    case PhoneNumberUtil::MOBILE: return "mobile";
    case PhoneNumberUtil::FIXED_LINE_OR_MOBILE: return "fixed_or_mobile";
    case PhoneNumberUtil::TOLL_FREE: return "toll_free";
    case PhoneNumberUtil::PREMIUM_RATE: return "premium_rate";
    case PhoneNumberUtil::SHARED_COST: return "shared_cost";
    case PhoneNumberUtil::VOIP: return "voip";
    case PhoneNumberUtil::PERSONAL_NUMBER: return "personal_number";
    case PhoneNumberUtil::PAGER: return "pager";
    case PhoneNumberUtil::UAN: return "uan";
    case PhoneNumberUtil::VOICEMAIL: return "voicemail";
    case PhoneNumberUtil::UNKNOWN: return "unknown";
    }
    return "unknown";
}

const char *error_name(PhoneNumberUtil::ErrorType e)
{
    switch (e) {
    case PhoneNumberUtil::NO_PARSING_ERROR: return "NO_PARSING_ERROR";
    case PhoneNumberUtil::INVALID_COUNTRY_CODE_ERROR: return "INVALID_COUNTRY_CODE";
    case PhoneNumberUtil::NOT_A_NUMBER: return "NOT_A_NUMBER";
    case PhoneNumberUtil::TOO_SHORT_AFTER_IDD: return "TOO_SHORT_AFTER_IDD";
    case PhoneNumberUtil::TOO_SHORT_NSN: return "TOO_SHORT_NSN";
    case PhoneNumberUtil::TOO_LONG_NSN: return "TOO_LONG_NSN";
    }
    return "UNKNOWN_ERROR";
}

std::string lib_verdict(const std::string &input)
{
    const PhoneNumberUtil *util = PhoneNumberUtil::GetInstance();
    PhoneNumber n;
    PhoneNumberUtil::ErrorType e = util->Parse(input, "CN", &n);
    if (e != PhoneNumberUtil::NO_PARSING_ERROR)
        return std::string("parse_error:") + error_name(e);
    if (!util->IsValidNumber(n))
        return "invalid";
    std::string nsn;
    util->GetNationalSignificantNumber(n, &nsn);
    std::string v = std::string(type_name(util->GetNumberType(n))) + " " + nsn;
    v = with_ext(v, n.has_extension() ? n.extension().c_str() : nullptr);
    std::string region;
    util->GetRegionCodeForNumber(n, &region);
    if (region != "CN")
        v = "foreign:" + region + " +" + std::to_string(n.country_code()) + " " + v;
    return v;
}

bool is_invalid(const std::string &v)
{
    return v.compare(0, 8, "invalid:") == 0 || v == "invalid"
           || v.compare(0, 12, "parse_error:") == 0;
}

// "mobile 138...;ext=1" -> class "mobile", rest "138...;ext=1".
void split_valid(const std::string &v, std::string &cls, std::string &rest)
{
    size_t sp = v.find(' ');
    cls = v.substr(0, sp);
    rest = sp == std::string::npos ? "" : v.substr(sp + 1);
    if (cls == "toll_free" || cls == "shared_cost" || cls == "premium_rate" || cls == "uan")
        cls = "business";
}

bool agree(const std::string &ours, const std::string &lib)
{
    const std::string other = "other_calling_code ";
    bool lf = lib.compare(0, 8, "foreign:") == 0;
    if (ours.compare(0, other.size(), other) == 0) {
        if (is_invalid(lib))
            return true;
        // "foreign:HK +852 mobile ..." against "other_calling_code +852".
        if (!lf)
            return false;
        size_t sp = lib.find(' ');
        if (sp == std::string::npos)
            return false;
        size_t end = lib.find(' ', sp + 1);
        return lib.substr(sp + 1, end == std::string::npos ? end : end - sp - 1)
               == ours.substr(other.size());
    }
    bool oi = is_invalid(ours), li = is_invalid(lib);
    if (oi || li)
        return oi && li;
    if (lf)
        return false;
    std::string oc, orest, lc, lrest;
    split_valid(ours, oc, orest);
    split_valid(lib, lc, lrest);
    bool type_ok = oc == lc || (lc == "fixed_or_mobile" && (oc == "mobile" || oc == "fixed"));
    return type_ok && orest == lrest;
}

struct Listed {
    std::string ours, lib, why;
    int lineno;
    bool seen;
};

int dump(const char *phones)
{
    std::vector<Line> inputs;
    if (!read_lines(phones, inputs))
        return 2;
    for (const Line &l : inputs) {
        std::string o = our_verdict(l.text), b = lib_verdict(l.text);
        std::cout << l.text << "\t" << o << "\t" << b << "\t"
                  << (agree(o, b) ? "agree" : "DIFFER") << "\n";
    }
    return 0;
}

} // namespace

int main(int argc, char **argv)
{
    if (argc == 3 && std::strcmp(argv[1], "--dump") == 0)
        return dump(argv[2]);
    if (argc != 3) {
        std::cerr << "usage: crm-phone-oracle phones.txt differences.txt\n"
                     "       crm-phone-oracle --dump phones.txt\n";
        return 2;
    }

    std::vector<Line> inputs, diffs;
    if (!read_lines(argv[1], inputs) || !read_lines(argv[2], diffs))
        return 2;

    int passed = 0, failed = 0;

    std::map<std::string, Listed> listed;
    for (const Line &l : diffs) {
        std::vector<std::string> f;
        size_t start = 0;
        for (;;) {
            size_t tab = l.text.find('\t', start);
            f.push_back(l.text.substr(start, tab == std::string::npos ? tab : tab - start));
            if (tab == std::string::npos)
                break;
            start = tab + 1;
        }
        if (f.size() != 4 || f[0].empty() || f[3].empty()) {
            std::cout << "differences.txt:" << l.lineno
                      << ": want <input>\\t<ours>\\t<libphonenumber>\\t<why>\n";
            failed++;
            continue;
        }
        if (listed.count(f[0])) {
            std::cout << "differences.txt:" << l.lineno << ": duplicate entry for '" << f[0]
                      << "'\n";
            failed++;
            continue;
        }
        listed[f[0]] = Listed{f[1], f[2], f[3], l.lineno, false};
    }

    std::set<std::string> seen_inputs;
    for (const Line &l : inputs) {
        if (!seen_inputs.insert(l.text).second) {
            std::cout << "phones.txt:" << l.lineno << ": duplicate input '" << l.text << "'\n";
            failed++;
            continue;
        }
        std::string ours = our_verdict(l.text), lib = lib_verdict(l.text);
        bool same = agree(ours, lib);
        auto it = listed.find(l.text);
        if (it == listed.end()) {
            if (same) {
                passed++;
            } else {
                std::cout << "UNEXPECTED DIFFERENCE phones.txt:" << l.lineno << ": '" << l.text
                          << "' ours=" << ours << " libphonenumber=" << lib << "\n";
                failed++;
            }
            continue;
        }
        Listed &d = it->second;
        d.seen = true;
        if (same) {
            std::cout << "STALE differences.txt:" << d.lineno << ": '" << l.text
                      << "' no longer differs (ours=" << ours << " libphonenumber=" << lib
                      << "); remove it\n";
            failed++;
        } else if (d.ours != ours || d.lib != lib) {
            std::cout << "CHANGED differences.txt:" << d.lineno << ": '" << l.text
                      << "' listed ours=" << d.ours << " libphonenumber=" << d.lib
                      << ", now ours=" << ours << " libphonenumber=" << lib << "\n";
            failed++;
        } else {
            passed++;
        }
    }
    for (const auto &kv : listed) {
        if (!kv.second.seen) {
            std::cout << "STALE differences.txt:" << kv.second.lineno << ": '" << kv.first
                      << "' is not an input in phones.txt\n";
            failed++;
        }
    }

    std::cout << "oracle: " << passed << " passed, " << failed << " failed\n";
    return failed == 0 ? 0 : 1;
}
