package ccmessaging

import "strings"

// languages are the ISO 639-1 two-letter language codes, including bh
// (Bihari), which many platforms still use.
var languages = func() map[string]bool {
	const codes = "" +
		"aa ab ae af ak am an ar as av ay az " +
		"ba be bg bh bi bm bn bo br bs " +
		"ca ce ch co cr cs cu cv cy " +
		"da de dv dz " +
		"ee el en eo es et eu " +
		"fa ff fi fj fo fr fy " +
		"ga gd gl gn gu gv " +
		"ha he hi ho hr ht hu hy hz " +
		"ia id ie ig ii ik io is it iu " +
		"ja jv " +
		"ka kg ki kj kk kl km kn ko kr ks ku kv kw ky " +
		"la lb lg li ln lo lt lu lv " +
		"mg mh mi mk ml mn mr ms mt my " +
		"na nb nd ne ng nl nn no nr nv ny " +
		"oc oj om or os " +
		"pa pi pl ps pt " +
		"qu " +
		"rm rn ro ru rw " +
		"sa sc sd se sg si sk sl sm sn so sq sr ss st su sv sw " +
		"ta te tg th ti tk tl tn to tr ts tt tw ty " +
		"ug uk ur uz " +
		"ve vi vo " +
		"wa wo " +
		"xh " +
		"yi yo " +
		"za zh zu"
	m := map[string]bool{}
	for _, c := range strings.Fields(codes) {
		m[c] = true
	}
	return m
}()

// ValidLocale reports whether s is an ISO 639-1 language code, optionally
// followed by "_" or "-" and a region: two letters (ISO 3166-1, such as
// CN in zh_CN) or three digits (UN M.49, such as 419 in es_419). Letter
// case is not significant.
func ValidLocale(s string) bool {
	lang, region, hasRegion := strings.Cut(s, "_")
	if !hasRegion {
		lang, region, hasRegion = strings.Cut(s, "-")
	}
	if !twoLetters(lang) || !languages[strings.ToLower(lang)] {
		return false
	}
	return !hasRegion || validRegion(region)
}

func twoLetters(s string) bool { return len(s) == 2 && isASCIILetter(s[0]) && isASCIILetter(s[1]) }

func validRegion(r string) bool {
	switch len(r) {
	case 2:
		return twoLetters(r)
	case 3:
		return isDigit(r[0]) && isDigit(r[1]) && isDigit(r[2])
	}
	return false
}

func isASCIILetter(c byte) bool { return ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z') }

func isDigit(c byte) bool { return '0' <= c && c <= '9' }
