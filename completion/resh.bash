# bash completion for resh                                  -*- shell-script -*-
#
# Install: source this file from ~/.bashrc, or copy it to
# ~/.local/share/bash-completion/completions/resh (bash-completion 2 loads
# it on demand). Completes resh's options, their values, and hosts: the
# ones in ~/.resh/known_hosts (RESH_HOME/known_hosts) and the Host aliases
# of ~/.ssh/config (or of the -F file), with USER@ kept.

# The options of resh -h; tests/completion_test.go keeps them in step.
_resh_opts='-4 -6 -all -allow -executors -F -give-up -h --help -i -insecure -known-only -l -n -no-files -o -on -p -q -T -t -tt -V --version -v'
# The options that take a value.
_resh_opts_with_value='-allow -F -give-up -i -l -o -on -p'
# The -o keys.
_resh_o_keys='Port= User= IdentityFile= ConnectTimeout= StrictHostKeyChecking= AddressFamily= RequestTTY= LogLevel= ServerAliveInterval= GiveUp= NoFiles= Allow='

# _resh_hosts prints the hosts resh knows of, one a line. $1 is the ssh
# configuration file (default ~/.ssh/config, "none" for none).
_resh_hosts() {
	local kh="${RESH_HOME:-$HOME/.resh}/known_hosts" cfg="${1:-$HOME/.ssh/config}"
	if [[ -r $kh ]]; then
		# Each line: HOSTS KEYTYPE KEY, HOSTS comma separated, [host]:port when
		# the port is not 22; hashed names (|1|...) and markers (@...) skipped.
		local hosts h _
		while read -r hosts _; do
			[[ -z $hosts || $hosts == '#'* || $hosts == '@'* ]] && continue
			local IFS=,
			for h in $hosts; do
				[[ $h == '|'* ]] && continue
				if [[ $h == '['*']:4200' ]]; then
					h=${h#[}
					h=${h%]:4200}
					[[ $h == *:* ]] && h="[$h]"
				elif [[ $h == '['*']:'* && ${h%%]:*} != *:* ]]; then
					h="${h#[}"
					h="${h/]:/:}"
				fi
				printf '%s\n' "$h"
			done
			unset IFS
		done <"$kh"
	fi
	if [[ $cfg != none && -r $cfg ]]; then
		# Host lines, without patterns (*, ?, !).
		local key rest
		while read -r key rest; do
			[[ ${key,,} == host ]] || continue
			local h
			for h in $rest; do
				[[ $h == *[*?!]* ]] || printf '%s\n' "$h"
			done
		done <"$cfg"
	fi
}

_resh() {
	local cur prev words cword
	if declare -F _init_completion >/dev/null; then
		_init_completion -n =:@ || return
	else
		cur=${COMP_WORDS[COMP_CWORD]}
		prev=${COMP_WORDS[COMP_CWORD-1]}
		words=("${COMP_WORDS[@]}")
		cword=$COMP_CWORD
	fi
	COMPREPLY=()

	case $prev in
	-i | -F)
		COMPREPLY=($(compgen -f -- "$cur"))
		return
		;;
	-allow)
		COMPREPLY=($(compgen -f -- "$cur"))
		return
		;;
	-l)
		COMPREPLY=($(compgen -u -- "$cur"))
		return
		;;
	-o)
		COMPREPLY=($(compgen -W "$_resh_o_keys" -- "$cur"))
		[[ ${#COMPREPLY[@]} -eq 1 && $COMPREPLY == *= ]] && compopt -o nospace 2>/dev/null
		return
		;;
	-p | -give-up | -on)
		# A number, a duration, an executor's name (resh -executors HOST).
		return
		;;
	esac

	# Find HOST: the first word that is neither an option nor an option's
	# value; after it come more options, then the command.
	local i w host= cfg= ended=
	for ((i = 1; i < cword; i++)); do
		w=${words[i]}
		if [[ $w == -- && -z $ended ]]; then
			ended=1
		elif [[ $w == -* && -z $ended ]]; then
			[[ $w == -F ]] && cfg=${words[i+1]}
			[[ " $_resh_opts_with_value " == *" $w "* ]] && ((i++))
		elif [[ -z $host ]]; then
			host=$w
		else
			# The command has started: its arguments are left to the files.
			COMPREPLY=($(compgen -f -- "$cur"))
			return
		fi
	done

	if [[ $cur == -* && -z $ended ]]; then
		COMPREPLY=($(compgen -W "$_resh_opts" -- "$cur"))
		return
	fi
	if [[ -z $host ]]; then
		local user=
		if [[ $cur == *@* ]]; then
			user=${cur%%@*}@
		fi
		cfg=${cfg/#\~/$HOME}
		COMPREPLY=($(compgen -P "$user" -W "$(_resh_hosts "$cfg" | sort -u)" -- "${cur#*@}"))
		return
	fi
	# The command, on HOST: local names are the best guess.
	COMPREPLY=($(compgen -c -- "$cur"))
}

complete -F _resh resh
