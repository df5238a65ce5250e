# SPDX-License-Identifier: GPL-2.0-only
# shellcheck shell=bash
#
# The mutant list (scripts/mutants/mutants.txt): reading it, checking it
# against the sources, applying one mutant to a copy of them. Sourced by
# scripts/mutants.sh; bash only.
#
# After mut_load, mutant i (0-based) is MUT_ID[i], MUT_FILE[i],
# MUT_WHY[i], MUT_FROM[i] and MUT_TO[i], the last two with their \t and
# \n escapes expanded.

MUT_ID=()
MUT_FILE=()
MUT_WHY=()
MUT_FROM=()
MUT_TO=()

# mut_err LIST LINE MESSAGE: one complaint about the list, on stderr.
mut_err() {
	echo "mutants: $1:$2: $3" >&2
}

# mut_unescape TEXT: set MUT_S to TEXT with printf %b's escapes expanded.
# The x keeps a trailing newline that command substitution would eat.
mut_unescape() {
	MUT_S=$(printf '%b' "$1"; echo x)
	MUT_S=${MUT_S%x}
}

# mut_load LIST: read every mutant of LIST into the MUT_* arrays.
# Return 1, after saying what, on any malformed or duplicate entry.
mut_load() {
	local list=$1 n=0 bad=0 line key rest want=mutant i
	local id='' file='' why='' from='' to=''

	MUT_ID=() MUT_FILE=() MUT_WHY=() MUT_FROM=() MUT_TO=()
	while IFS= read -r line || [ -n "$line" ]; do
		n=$((n + 1))
		case $line in
		""|"#"*)
			continue ;;
		esac
		key=${line%%[[:space:]]*}
		rest=${line#"$key"}
		rest=${rest#"${rest%%[![:space:]]*}"}
		if [ "$key" != "$want" ]; then
			mut_err "${list##*/}" "$n" "expected '$want', found '$key'"
			bad=1
			want=mutant
			continue
		fi
		case $key in
		mutant)
			read -r id file <<<"$rest"
			if ! [[ $id =~ ^[a-z0-9][a-z0-9-]*$ ]] || [ -z "$file" ]; then
				mut_err "${list##*/}" "$n" "want 'mutant ID FILE'"
				bad=1
				continue
			fi
			want=why ;;
		why)
			why=$rest
			want=from ;;
		from)
			mut_unescape "$rest"
			from=$MUT_S
			want=to ;;
		to)
			mut_unescape "$rest"
			to=$MUT_S
			for i in "${!MUT_ID[@]}"; do
				if [ "${MUT_ID[i]}" = "$id" ]; then
					mut_err "${list##*/}" "$n" "mutant $id twice"
					bad=1
				fi
			done
			if [ -z "$from" ] || [ "$from" = "$to" ]; then
				mut_err "${list##*/}" "$n" "$id: empty 'from', or 'to' the same"
				bad=1
			fi
			MUT_ID+=("$id") MUT_FILE+=("$file") MUT_WHY+=("$why")
			MUT_FROM+=("$from") MUT_TO+=("$to")
			want=mutant ;;
		esac
	done <"$list"
	if [ "$want" != mutant ]; then
		mut_err "${list##*/}" "$n" "the last mutant is incomplete (no '$want')"
		bad=1
	fi
	return "$bad"
}

# mut_count TEXT PATTERN: how many times PATTERN occurs in TEXT, literally.
mut_count() {
	local text=$1 pat=$2 n=0

	while [[ $text == *"$pat"* ]]; do
		text=${text#*"$pat"}
		n=$((n + 1))
	done
	echo "$n"
}

# mut_read FILE: set MUT_TEXT to FILE's contents, trailing newlines kept.
mut_read() {
	MUT_TEXT=$(cat "$1"; echo x) || return 1
	MUT_TEXT=${MUT_TEXT%x}
}

# mut_check SRC: every mutant's pattern occurs exactly once in its file
# under SRC. Return 1, after naming each stale mutant, if one does not.
mut_check() {
	local src=$1 i n bad=0

	for i in "${!MUT_ID[@]}"; do
		if [ ! -f "$src/${MUT_FILE[i]}" ]; then
			echo "mutants: ${MUT_ID[i]}: no file ${MUT_FILE[i]}" >&2
			bad=1
			continue
		fi
		mut_read "$src/${MUT_FILE[i]}" || { bad=1; continue; }
		n=$(mut_count "$MUT_TEXT" "${MUT_FROM[i]}")
		if [ "$n" != 1 ]; then
			echo "mutants: ${MUT_ID[i]}: its 'from' occurs $n times" \
				"in ${MUT_FILE[i]}, not once: stale, fix or drop it" >&2
			bad=1
		fi
	done
	return "$bad"
}

# mut_apply I DIR: apply mutant I to DIR's copy of its file (which
# mut_check found the pattern in once). The file gets a new mtime, so
# that kbuild recompiles it and only it.
mut_apply() {
	local i=$1 f=$2/${MUT_FILE[$1]} from=${MUT_FROM[$1]}

	mut_read "$f" || return 1
	[ "$(mut_count "$MUT_TEXT" "$from")" = 1 ] || return 1
	printf '%s' "${MUT_TEXT%%"$from"*}${MUT_TO[i]}${MUT_TEXT#*"$from"}" >"$f"
}
