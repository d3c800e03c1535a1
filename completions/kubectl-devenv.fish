# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_kubectl_devenv_global_optspecs
    string join \n kubeconfig= context= cluster= user= n/namespace= request-timeout= o/output= v/verbose h/help V/version
end

function __fish_kubectl_devenv_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_kubectl_devenv_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_kubectl_devenv_using_subcommand
    set -l cmd (__fish_kubectl_devenv_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c kubectl-devenv -n "__fish_kubectl_devenv_needs_command" -l kubeconfig -d 'Path to the kubeconfig file to use (default: $KUBECONFIG, then ~/.kube/config)' -r -F
complete -c kubectl-devenv -n "__fish_kubectl_devenv_needs_command" -l context -d 'The name of the kubeconfig context to use' -r
complete -c kubectl-devenv -n "__fish_kubectl_devenv_needs_command" -l cluster -d 'The name of the kubeconfig cluster to use' -r
complete -c kubectl-devenv -n "__fish_kubectl_devenv_needs_command" -l user -d 'The name of the kubeconfig user to use' -r
complete -c kubectl-devenv -n "__fish_kubectl_devenv_needs_command" -s n -l namespace -d 'The namespace scope for this request' -r
complete -c kubectl-devenv -n "__fish_kubectl_devenv_needs_command" -l request-timeout -d 'How long to wait for each call to the server (e.g. 5s, 1m; 0 waits forever)' -r
complete -c kubectl-devenv -n "__fish_kubectl_devenv_needs_command" -s o -l output -d 'Output format' -r -f -a "table\t''
json\t''
yaml\t''
dotenv\t'`NAME=value` lines (`env` only)'
shell\t'`export NAME=value` lines (`env` only)'"
complete -c kubectl-devenv -n "__fish_kubectl_devenv_needs_command" -s v -l verbose -d 'More log output on stderr (-v info, -vv debug, -vvv trace)'
complete -c kubectl-devenv -n "__fish_kubectl_devenv_needs_command" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c kubectl-devenv -n "__fish_kubectl_devenv_needs_command" -s V -l version -d 'Print version'
complete -c kubectl-devenv -n "__fish_kubectl_devenv_needs_command" -f -a "up" -d 'Create or update the dev pod and test stack (wizard, devenv.yaml or flags), then wait until Ready'
complete -c kubectl-devenv -n "__fish_kubectl_devenv_needs_command" -f -a "init" -d 'Write a devenv.yaml from a docker-compose.yml (--from-compose), with a report per service'
complete -c kubectl-devenv -n "__fish_kubectl_devenv_needs_command" -f -a "down" -d 'Delete a stack\'s objects (data volumes and credentials are kept unless --purge)'
complete -c kubectl-devenv -n "__fish_kubectl_devenv_needs_command" -f -a "logs" -d 'Print the logs of a component\'s pods'
complete -c kubectl-devenv -n "__fish_kubectl_devenv_needs_command" -f -a "shell" -d 'Open a shell, or run a command, in the dev pod (or another component)'
complete -c kubectl-devenv -n "__fish_kubectl_devenv_needs_command" -f -a "version" -d 'Print the client version and, unless --client, the server\'s'
complete -c kubectl-devenv -n "__fish_kubectl_devenv_needs_command" -f -a "status" -d 'List what kubectl-devenv manages in the cluster'
complete -c kubectl-devenv -n "__fish_kubectl_devenv_needs_command" -f -a "check" -d 'Check that images have variants for the nodes\' architectures, or (--isolation) that the stack is isolated'
complete -c kubectl-devenv -n "__fish_kubectl_devenv_needs_command" -f -a "forward" -d 'Forward local ports to the stack\'s components, following their Ready pods'
complete -c kubectl-devenv -n "__fish_kubectl_devenv_needs_command" -f -a "sync" -d 'Upload local code into the dev pod and keep it in sync (one-way; local files are never changed)'
complete -c kubectl-devenv -n "__fish_kubectl_devenv_needs_command" -f -a "credentials" -d 'Print a database component\'s generated credentials (never printed elsewhere)'
complete -c kubectl-devenv -n "__fish_kubectl_devenv_needs_command" -f -a "run" -d 'Run a local command against the stack: forwards, and the dev pod\'s environment pointed at them'
complete -c kubectl-devenv -n "__fish_kubectl_devenv_needs_command" -f -a "env" -d 'Print the dev pod\'s environment pointed at local forwards (-o dotenv, shell, json or yaml)'
complete -c kubectl-devenv -n "__fish_kubectl_devenv_needs_command" -f -a "open" -d 'Forward a local port to the dev pod\'s web server and print its URL'
complete -c kubectl-devenv -n "__fish_kubectl_devenv_needs_command" -f -a "completion" -d 'Print a shell completion script, the kubectl plugin-completion shim, or the man page'
complete -c kubectl-devenv -n "__fish_kubectl_devenv_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c kubectl-devenv -n "__fish_kubectl_devenv_using_subcommand up" -s f -l file -d 'Stack description to apply (default: ./devenv.yaml if it exists, else the wizard)' -r -F
complete -c kubectl-devenv -n "__fish_kubectl_devenv_using_subcommand up" -l components -d 'Test stack components instead of a file, with optional versions: php,mysql:8.0,redis' -r
complete -c kubectl-devenv -n "__fish_kubectl_devenv_using_subcommand up" -l name -d 'Stack name (labels every object; default: devenv)' -r
complete -c kubectl-devenv -n "__fish_kubectl_devenv_using_subcommand up" -l dev-namespace -d 'Namespace of the dev pod (default: dev)' -r
complete -c kubectl-devenv -n "__fish_kubectl_devenv_using_subcommand up" -l test-namespace -d 'Namespace of the test stack (default: test)' -r
complete -c kubectl-devenv -n "__fish_kubectl_devenv_using_subcommand up" -l code-path -d 'Host directory to mount into the dev pod at /var/www/html (hostPath)' -r -F
complete -c kubectl-devenv -n "__fish_kubectl_devenv_using_subcommand up" -l code-path-node -d 'The node that has --code-path; the dev pod is pinned to it (needed when several nodes could run the dev pod)' -r
complete -c kubectl-devenv -n "__fish_kubectl_devenv_using_subcommand up" -l arch -d 'Run every pod on nodes of this architecture' -r -f -a "amd64\t''
arm64\t''"
complete -c kubectl-devenv -n "__fish_kubectl_devenv_using_subcommand up" -l insecure-registry -d 'A registry (host:port) to reach over plain HTTP; loopback registries always are' -r
complete -c kubectl-devenv -n "__fish_kubectl_devenv_using_subcommand up" -l registry-timeout -d 'How long to wait for a registry to answer, per request (to connect: at most 5s)' -r
complete -c kubectl-devenv -n "__fish_kubectl_devenv_using_subcommand up" -l timeout -d 'How long to wait for every component to become Ready' -r
complete -c kubectl-devenv -n "__fish_kubectl_devenv_using_subcommand up" -l kubeconfig -d 'Path to the kubeconfig file to use (default: $KUBECONFIG, then ~/.kube/config)' -r -F
complete -c kubectl-devenv -n "__fish_kubectl_devenv_using_subcommand up" -l context -d 'The name of the kubeconfig context to use' -r
complete -c kubectl-devenv -n "__fish_kubectl_devenv_using_subcommand up" -l cluster -d 'The name of the kubeconfig cluster to use' -r
complete -c kubectl-devenv -n "__fish_kubectl_devenv_using_subcommand up" -l user -d 'The name of the kubeconfig user to use' -r
complete -c kubectl-devenv -n "__fish_kubectl_devenv_using_subcommand up" -s n -l namespace -d 'The namespace scope for this request' -r
complete -c kubectl-devenv -n "__fish_kubectl_devenv_using_subcommand up" -l request-timeout -d 'How long to wait for each call to the server (e.g. 5s, 1m; 0 waits forever)' -r
complete -c kubectl-devenv -n "__fish_kubectl_devenv_using_subcommand up" -s o -l output -d 'Output format' -r -f -a "table\t''
json\t''
yaml\t''
dotenv\t'`NAME=value` lines (`env` only)'
shell\t'`export NAME=value` lines (`env` only)'"
complete -c kubectl-devenv -n "__fish_kubectl_devenv_using_subcommand up" -l skip-arch-check -d 'Do not refuse a target architecture that no node has, nor images without a variant for it'
complete -c kubectl-devenv -n "__fish_kubectl_devenv_using_subcommand up" -s y -l yes -d 'Apply without asking for confirmation (required when there is no terminal)'
complete -c kubectl-devenv -n "__fish_kubectl_devenv_using_subcommand up" -l dry-run -d 'Print the objects instead of applying them; needs no cluster'
complete -c kubectl-devenv -n "__fish_kubectl_devenv_using_subcommand up" -s v -l verbose -d 'More log output on stderr (-v info, -vv debug, -vvv trace)'
complete -c kubectl-devenv -n "__fish_kubectl_devenv_using_subcommand up" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c kubectl-devenv -n "__fish_kubectl_devenv_using_subcommand up" -s V -l version -d 'Print version'
complete -c kubectl-devenv -n "__fish_kubectl_devenv_using_subcommand init" -l from-compose -d 'Convert a Compose file; given a directory or nothing, the first of compose.yaml, compose.yml, docker-compose.yaml and docker-compose.yml there' -r -F
complete -c kubectl-devenv -n "__fish_kubectl_devenv_using_subcommand init" -l profile -d 'Enable a Compose profile (repeatable; default: $COMPOSE_PROFILES)' -r
complete -c kubectl-devenv -n "__fish_kubectl_devenv_using_subcommand init" -l name -d 'Stack name (default: devenv)' -r
complete -c kubectl-devenv -n "__fish_kubectl_devenv_using_subcommand init" -s f -l file -d 'Where to write the stack description' -r -F
complete -c kubectl-devenv -n "__fish_kubectl_devenv_using_subcommand init" -l kubeconfig -d 'Path to the kubeconfig file to use (default: $KUBECONFIG, then ~/.kube/config)' -r -F
complete -c kubectl-devenv -n "__fish_kubectl_devenv_using_subcommand init" -l context -d 'The name of the kubeconfig context to use' -r
complete -c kubectl-devenv -n "__fish_kubectl_devenv_using_subcommand init" -l cluster -d 'The name of the kubeconfig cluster to use' -r
complete -c kubectl-devenv -n "__fish_kubectl_devenv_using_subcommand init" -l user -d 'The name of the kubeconfig user to use' -r
complete -c kubectl-devenv -n "__fish_kubectl_devenv_using_subcommand init" -s n -l namespace -d 'The namespace scope for this request' -r
complete -c kubectl-devenv -n "__fish_kubectl_devenv_using_subcommand init" -l request-timeout -d 'How long to wait for each call to the server (e.g. 5s, 1m; 0 waits forever)' -r
complete -c kubectl-devenv -n "__fish_kubectl_devenv_using_subcommand init" -s o -l output -d 'Output format' -r -f -a "table\t''
json\t''
yaml\t''
dotenv\t'`NAME=value` lines (`env` only)'
shell\t'`export NAME=value` lines (`env` only)'"
complete -c kubectl-devenv -n "__fish_kubectl_devenv_using_subcommand init" -l force -d 'Overwrite an existing devenv.yaml'
complete -c kubectl-devenv -n "__fish_kubectl_devenv_using_subcommand init" -s v -l verbose -d 'More log output on stderr (-v info, -vv debug, -vvv trace)'
complete -c kubectl-devenv -n "__fish_kubectl_devenv_using_subcommand init" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c kubectl-devenv -n "__fish_kubectl_devenv_using_subcommand init" -s V -l version -d 'Print version'
complete -c kubectl-devenv -n "__fish_kubectl_devenv_using_subcommand down" -s f -l file -d 'The stack\'s description (default: ./devenv.yaml if it exists)' -r -F
complete -c kubectl-devenv -n "__fish_kubectl_devenv_using_subcommand down" -l stack -d 'The stack (default: the one in ./devenv.yaml, if there is one)' -r
complete -c kubectl-devenv -n "__fish_kubectl_devenv_using_subcommand down" -l timeout -d 'How long to wait for the pods (and, with --purge, the namespaces) to go away' -r
complete -c kubectl-devenv -n "__fish_kubectl_devenv_using_subcommand down" -l kubeconfig -d 'Path to the kubeconfig file to use (default: $KUBECONFIG, then ~/.kube/config)' -r -F
complete -c kubectl-devenv -n "__fish_kubectl_devenv_using_subcommand down" -l context -d 'The name of the kubeconfig context to use' -r
complete -c kubectl-devenv -n "__fish_kubectl_devenv_using_subcommand down" -l cluster -d 'The name of the kubeconfig cluster to use' -r
complete -c kubectl-devenv -n "__fish_kubectl_devenv_using_subcommand down" -l user -d 'The name of the kubeconfig user to use' -r
complete -c kubectl-devenv -n "__fish_kubectl_devenv_using_subcommand down" -s n -l namespace -d 'The namespace scope for this request' -r
complete -c kubectl-devenv -n "__fish_kubectl_devenv_using_subcommand down" -l request-timeout -d 'How long to wait for each call to the server (e.g. 5s, 1m; 0 waits forever)' -r
complete -c kubectl-devenv -n "__fish_kubectl_devenv_using_subcommand down" -s o -l output -d 'Output format' -r -f -a "table\t''
json\t''
yaml\t''
dotenv\t'`NAME=value` lines (`env` only)'
shell\t'`export NAME=value` lines (`env` only)'"
complete -c kubectl-devenv -n "__fish_kubectl_devenv_using_subcommand down" -l purge -d 'Also delete the data volumes (PVCs), the credential Secrets and the namespaces'
complete -c kubectl-devenv -n "__fish_kubectl_devenv_using_subcommand down" -s y -l yes -d 'Delete without asking for confirmation (required when there is no terminal)'
complete -c kubectl-devenv -n "__fish_kubectl_devenv_using_subcommand down" -s v -l verbose -d 'More log output on stderr (-v info, -vv debug, -vvv trace)'
complete -c kubectl-devenv -n "__fish_kubectl_devenv_using_subcommand down" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c kubectl-devenv -n "__fish_kubectl_devenv_using_subcommand down" -s V -l version -d 'Print version'
complete -c kubectl-devenv -n "__fish_kubectl_devenv_using_subcommand logs" -l since -d 'Only lines newer than this (e.g. 5s, 2m, 1h)' -r
complete -c kubectl-devenv -n "__fish_kubectl_devenv_using_subcommand logs" -l tail -d 'Only the last N lines of each pod' -r
complete -c kubectl-devenv -n "__fish_kubectl_devenv_using_subcommand logs" -l stack -d 'The stack (default: the one in ./devenv.yaml, if there is one)' -r
complete -c kubectl-devenv -n "__fish_kubectl_devenv_using_subcommand logs" -l kubeconfig -d 'Path to the kubeconfig file to use (default: $KUBECONFIG, then ~/.kube/config)' -r -F
complete -c kubectl-devenv -n "__fish_kubectl_devenv_using_subcommand logs" -l context -d 'The name of the kubeconfig context to use' -r
complete -c kubectl-devenv -n "__fish_kubectl_devenv_using_subcommand logs" -l cluster -d 'The name of the kubeconfig cluster to use' -r
complete -c kubectl-devenv -n "__fish_kubectl_devenv_using_subcommand logs" -l user -d 'The name of the kubeconfig user to use' -r
complete -c kubectl-devenv -n "__fish_kubectl_devenv_using_subcommand logs" -s n -l namespace -d 'The namespace scope for this request' -r
complete -c kubectl-devenv -n "__fish_kubectl_devenv_using_subcommand logs" -l request-timeout -d 'How long to wait for each call to the server (e.g. 5s, 1m; 0 waits forever)' -r
complete -c kubectl-devenv -n "__fish_kubectl_devenv_using_subcommand logs" -s o -l output -d 'Output format' -r -f -a "table\t''
json\t''
yaml\t''
dotenv\t'`NAME=value` lines (`env` only)'
shell\t'`export NAME=value` lines (`env` only)'"
complete -c kubectl-devenv -n "__fish_kubectl_devenv_using_subcommand logs" -s f -l follow -d 'Keep streaming new lines'
complete -c kubectl-devenv -n "__fish_kubectl_devenv_using_subcommand logs" -s p -l previous -d 'The previous, crashed instance of each container'
complete -c kubectl-devenv -n "__fish_kubectl_devenv_using_subcommand logs" -s v -l verbose -d 'More log output on stderr (-v info, -vv debug, -vvv trace)'
complete -c kubectl-devenv -n "__fish_kubectl_devenv_using_subcommand logs" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c kubectl-devenv -n "__fish_kubectl_devenv_using_subcommand logs" -s V -l version -d 'Print version'
complete -c kubectl-devenv -n "__fish_kubectl_devenv_using_subcommand shell" -l stack -d 'The stack (default: the one in ./devenv.yaml, if there is one)' -r
complete -c kubectl-devenv -n "__fish_kubectl_devenv_using_subcommand shell" -l kubeconfig -d 'Path to the kubeconfig file to use (default: $KUBECONFIG, then ~/.kube/config)' -r -F
complete -c kubectl-devenv -n "__fish_kubectl_devenv_using_subcommand shell" -l context -d 'The name of the kubeconfig context to use' -r
complete -c kubectl-devenv -n "__fish_kubectl_devenv_using_subcommand shell" -l cluster -d 'The name of the kubeconfig cluster to use' -r
complete -c kubectl-devenv -n "__fish_kubectl_devenv_using_subcommand shell" -l user -d 'The name of the kubeconfig user to use' -r
complete -c kubectl-devenv -n "__fish_kubectl_devenv_using_subcommand shell" -s n -l namespace -d 'The namespace scope for this request' -r
complete -c kubectl-devenv -n "__fish_kubectl_devenv_using_subcommand shell" -l request-timeout -d 'How long to wait for each call to the server (e.g. 5s, 1m; 0 waits forever)' -r
complete -c kubectl-devenv -n "__fish_kubectl_devenv_using_subcommand shell" -s o -l output -d 'Output format' -r -f -a "table\t''
json\t''
yaml\t''
dotenv\t'`NAME=value` lines (`env` only)'
shell\t'`export NAME=value` lines (`env` only)'"
complete -c kubectl-devenv -n "__fish_kubectl_devenv_using_subcommand shell" -s i -l stdin -d 'Pass stdin to the command even when it is not a terminal'
complete -c kubectl-devenv -n "__fish_kubectl_devenv_using_subcommand shell" -s v -l verbose -d 'More log output on stderr (-v info, -vv debug, -vvv trace)'
complete -c kubectl-devenv -n "__fish_kubectl_devenv_using_subcommand shell" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c kubectl-devenv -n "__fish_kubectl_devenv_using_subcommand shell" -s V -l version -d 'Print version'
complete -c kubectl-devenv -n "__fish_kubectl_devenv_using_subcommand version" -l kubeconfig -d 'Path to the kubeconfig file to use (default: $KUBECONFIG, then ~/.kube/config)' -r -F
complete -c kubectl-devenv -n "__fish_kubectl_devenv_using_subcommand version" -l context -d 'The name of the kubeconfig context to use' -r
complete -c kubectl-devenv -n "__fish_kubectl_devenv_using_subcommand version" -l cluster -d 'The name of the kubeconfig cluster to use' -r
complete -c kubectl-devenv -n "__fish_kubectl_devenv_using_subcommand version" -l user -d 'The name of the kubeconfig user to use' -r
complete -c kubectl-devenv -n "__fish_kubectl_devenv_using_subcommand version" -s n -l namespace -d 'The namespace scope for this request' -r
complete -c kubectl-devenv -n "__fish_kubectl_devenv_using_subcommand version" -l request-timeout -d 'How long to wait for each call to the server (e.g. 5s, 1m; 0 waits forever)' -r
complete -c kubectl-devenv -n "__fish_kubectl_devenv_using_subcommand version" -s o -l output -d 'Output format' -r -f -a "table\t''
json\t''
yaml\t''
dotenv\t'`NAME=value` lines (`env` only)'
shell\t'`export NAME=value` lines (`env` only)'"
complete -c kubectl-devenv -n "__fish_kubectl_devenv_using_subcommand version" -l client -d 'Print the client version only, without contacting the cluster'
complete -c kubectl-devenv -n "__fish_kubectl_devenv_using_subcommand version" -s v -l verbose -d 'More log output on stderr (-v info, -vv debug, -vvv trace)'
complete -c kubectl-devenv -n "__fish_kubectl_devenv_using_subcommand version" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c kubectl-devenv -n "__fish_kubectl_devenv_using_subcommand version" -s V -l version -d 'Print version'
complete -c kubectl-devenv -n "__fish_kubectl_devenv_using_subcommand status" -l stack -d 'The stack (default: the one in ./devenv.yaml, if there is one)' -r
complete -c kubectl-devenv -n "__fish_kubectl_devenv_using_subcommand status" -l kubeconfig -d 'Path to the kubeconfig file to use (default: $KUBECONFIG, then ~/.kube/config)' -r -F
complete -c kubectl-devenv -n "__fish_kubectl_devenv_using_subcommand status" -l context -d 'The name of the kubeconfig context to use' -r
complete -c kubectl-devenv -n "__fish_kubectl_devenv_using_subcommand status" -l cluster -d 'The name of the kubeconfig cluster to use' -r
complete -c kubectl-devenv -n "__fish_kubectl_devenv_using_subcommand status" -l user -d 'The name of the kubeconfig user to use' -r
complete -c kubectl-devenv -n "__fish_kubectl_devenv_using_subcommand status" -s n -l namespace -d 'The namespace scope for this request' -r
complete -c kubectl-devenv -n "__fish_kubectl_devenv_using_subcommand status" -l request-timeout -d 'How long to wait for each call to the server (e.g. 5s, 1m; 0 waits forever)' -r
complete -c kubectl-devenv -n "__fish_kubectl_devenv_using_subcommand status" -s o -l output -d 'Output format' -r -f -a "table\t''
json\t''
yaml\t''
dotenv\t'`NAME=value` lines (`env` only)'
shell\t'`export NAME=value` lines (`env` only)'"
complete -c kubectl-devenv -n "__fish_kubectl_devenv_using_subcommand status" -l exit-code -d 'Exit with 1 when a component is not fully ready (for scripts)'
complete -c kubectl-devenv -n "__fish_kubectl_devenv_using_subcommand status" -s v -l verbose -d 'More log output on stderr (-v info, -vv debug, -vvv trace)'
complete -c kubectl-devenv -n "__fish_kubectl_devenv_using_subcommand status" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c kubectl-devenv -n "__fish_kubectl_devenv_using_subcommand status" -s V -l version -d 'Print version'
complete -c kubectl-devenv -n "__fish_kubectl_devenv_using_subcommand check" -s f -l file -d 'Check the images of this stack file (default: ./devenv.yaml when no other images are given)' -r -F
complete -c kubectl-devenv -n "__fish_kubectl_devenv_using_subcommand check" -l arch -d 'Required architectures, comma-separated (default: devenv.yaml\'s targetArch, else every architecture among the cluster\'s nodes)' -r
complete -c kubectl-devenv -n "__fish_kubectl_devenv_using_subcommand check" -l image -d 'An image to check; repeat or list several' -r
complete -c kubectl-devenv -n "__fish_kubectl_devenv_using_subcommand check" -l insecure-registry -d 'A registry (host:port) to reach over plain HTTP; loopback registries always are' -r
complete -c kubectl-devenv -n "__fish_kubectl_devenv_using_subcommand check" -l registry-timeout -d 'How long to wait for a registry to answer, per request (to connect: at most 5s)' -r
complete -c kubectl-devenv -n "__fish_kubectl_devenv_using_subcommand check" -l stack -d 'The stack (default: the one in ./devenv.yaml, if there is one)' -r
complete -c kubectl-devenv -n "__fish_kubectl_devenv_using_subcommand check" -l probe-image -d 'The probe pods\' image with --isolation; it needs sh, timeout and nc' -r
complete -c kubectl-devenv -n "__fish_kubectl_devenv_using_subcommand check" -l timeout -d 'How long the --isolation probe may take, pod start included' -r
complete -c kubectl-devenv -n "__fish_kubectl_devenv_using_subcommand check" -l kubeconfig -d 'Path to the kubeconfig file to use (default: $KUBECONFIG, then ~/.kube/config)' -r -F
complete -c kubectl-devenv -n "__fish_kubectl_devenv_using_subcommand check" -l context -d 'The name of the kubeconfig context to use' -r
complete -c kubectl-devenv -n "__fish_kubectl_devenv_using_subcommand check" -l cluster -d 'The name of the kubeconfig cluster to use' -r
complete -c kubectl-devenv -n "__fish_kubectl_devenv_using_subcommand check" -l user -d 'The name of the kubeconfig user to use' -r
complete -c kubectl-devenv -n "__fish_kubectl_devenv_using_subcommand check" -s n -l namespace -d 'The namespace scope for this request' -r
complete -c kubectl-devenv -n "__fish_kubectl_devenv_using_subcommand check" -l request-timeout -d 'How long to wait for each call to the server (e.g. 5s, 1m; 0 waits forever)' -r
complete -c kubectl-devenv -n "__fish_kubectl_devenv_using_subcommand check" -s o -l output -d 'Output format' -r -f -a "table\t''
json\t''
yaml\t''
dotenv\t'`NAME=value` lines (`env` only)'
shell\t'`export NAME=value` lines (`env` only)'"
complete -c kubectl-devenv -n "__fish_kubectl_devenv_using_subcommand check" -l deployed -d 'Check the images of the workloads in the namespace (-n): Deployments, StatefulSets, DaemonSets, Jobs, CronJobs and bare Pods'
complete -c kubectl-devenv -n "__fish_kubectl_devenv_using_subcommand check" -s A -l all-namespaces -d 'Check the images of the workloads in all namespaces (implies --deployed)'
complete -c kubectl-devenv -n "__fish_kubectl_devenv_using_subcommand check" -l isolation -d 'Instead of images: prove that the stack\'s NetworkPolicy is enforced, by probing its Services from a temporary namespace and from the dev namespace'
complete -c kubectl-devenv -n "__fish_kubectl_devenv_using_subcommand check" -s v -l verbose -d 'More log output on stderr (-v info, -vv debug, -vvv trace)'
complete -c kubectl-devenv -n "__fish_kubectl_devenv_using_subcommand check" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c kubectl-devenv -n "__fish_kubectl_devenv_using_subcommand check" -s V -l version -d 'Print version'
complete -c kubectl-devenv -n "__fish_kubectl_devenv_using_subcommand forward" -s p -l port -d 'Fix a local port: COMPONENT=PORT, or COMPONENT:SERVICE_PORT=PORT for one port of a Service with several (repeatable; 0 picks any free port)' -r
complete -c kubectl-devenv -n "__fish_kubectl_devenv_using_subcommand forward" -l address -d 'Local address to listen on' -r
complete -c kubectl-devenv -n "__fish_kubectl_devenv_using_subcommand forward" -l stack -d 'The stack (default: the one in ./devenv.yaml, if there is one)' -r
complete -c kubectl-devenv -n "__fish_kubectl_devenv_using_subcommand forward" -l protocol -d 'How streams reach the API server: spdy, or websocket through proxies that refuse SPDY upgrades' -r -f -a "spdy\t'SPDY/3.1 (`portforward.k8s.io`), relayed to the kubelet unchanged'
websocket\t'WebSocket (`v4.channel.k8s.io`), for proxies that only pass WebSockets'"
complete -c kubectl-devenv -n "__fish_kubectl_devenv_using_subcommand forward" -l kubeconfig -d 'Path to the kubeconfig file to use (default: $KUBECONFIG, then ~/.kube/config)' -r -F
complete -c kubectl-devenv -n "__fish_kubectl_devenv_using_subcommand forward" -l context -d 'The name of the kubeconfig context to use' -r
complete -c kubectl-devenv -n "__fish_kubectl_devenv_using_subcommand forward" -l cluster -d 'The name of the kubeconfig cluster to use' -r
complete -c kubectl-devenv -n "__fish_kubectl_devenv_using_subcommand forward" -l user -d 'The name of the kubeconfig user to use' -r
complete -c kubectl-devenv -n "__fish_kubectl_devenv_using_subcommand forward" -s n -l namespace -d 'The namespace scope for this request' -r
complete -c kubectl-devenv -n "__fish_kubectl_devenv_using_subcommand forward" -l request-timeout -d 'How long to wait for each call to the server (e.g. 5s, 1m; 0 waits forever)' -r
complete -c kubectl-devenv -n "__fish_kubectl_devenv_using_subcommand forward" -s o -l output -d 'Output format' -r -f -a "table\t''
json\t''
yaml\t''
dotenv\t'`NAME=value` lines (`env` only)'
shell\t'`export NAME=value` lines (`env` only)'"
complete -c kubectl-devenv -n "__fish_kubectl_devenv_using_subcommand forward" -l all -d 'Forward every component found'
complete -c kubectl-devenv -n "__fish_kubectl_devenv_using_subcommand forward" -s v -l verbose -d 'More log output on stderr (-v info, -vv debug, -vvv trace)'
complete -c kubectl-devenv -n "__fish_kubectl_devenv_using_subcommand forward" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c kubectl-devenv -n "__fish_kubectl_devenv_using_subcommand forward" -s V -l version -d 'Print version'
complete -c kubectl-devenv -n "__fish_kubectl_devenv_using_subcommand sync" -s f -l file -d 'The devenv.yaml with the sync settings (default: ./devenv.yaml when it exists)' -r -F
complete -c kubectl-devenv -n "__fish_kubectl_devenv_using_subcommand sync" -l stack -d 'The stack (default: the one in ./devenv.yaml, if there is one)' -r
complete -c kubectl-devenv -n "__fish_kubectl_devenv_using_subcommand sync" -l kubeconfig -d 'Path to the kubeconfig file to use (default: $KUBECONFIG, then ~/.kube/config)' -r -F
complete -c kubectl-devenv -n "__fish_kubectl_devenv_using_subcommand sync" -l context -d 'The name of the kubeconfig context to use' -r
complete -c kubectl-devenv -n "__fish_kubectl_devenv_using_subcommand sync" -l cluster -d 'The name of the kubeconfig cluster to use' -r
complete -c kubectl-devenv -n "__fish_kubectl_devenv_using_subcommand sync" -l user -d 'The name of the kubeconfig user to use' -r
complete -c kubectl-devenv -n "__fish_kubectl_devenv_using_subcommand sync" -s n -l namespace -d 'The namespace scope for this request' -r
complete -c kubectl-devenv -n "__fish_kubectl_devenv_using_subcommand sync" -l request-timeout -d 'How long to wait for each call to the server (e.g. 5s, 1m; 0 waits forever)' -r
complete -c kubectl-devenv -n "__fish_kubectl_devenv_using_subcommand sync" -s o -l output -d 'Output format' -r -f -a "table\t''
json\t''
yaml\t''
dotenv\t'`NAME=value` lines (`env` only)'
shell\t'`export NAME=value` lines (`env` only)'"
complete -c kubectl-devenv -n "__fish_kubectl_devenv_using_subcommand sync" -l once -d 'Upload what the pod lacks, then exit instead of watching'
complete -c kubectl-devenv -n "__fish_kubectl_devenv_using_subcommand sync" -s v -l verbose -d 'More log output on stderr (-v info, -vv debug, -vvv trace)'
complete -c kubectl-devenv -n "__fish_kubectl_devenv_using_subcommand sync" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c kubectl-devenv -n "__fish_kubectl_devenv_using_subcommand sync" -s V -l version -d 'Print version'
complete -c kubectl-devenv -n "__fish_kubectl_devenv_using_subcommand credentials" -l stack -d 'The stack (default: the one in ./devenv.yaml, if there is one)' -r
complete -c kubectl-devenv -n "__fish_kubectl_devenv_using_subcommand credentials" -l kubeconfig -d 'Path to the kubeconfig file to use (default: $KUBECONFIG, then ~/.kube/config)' -r -F
complete -c kubectl-devenv -n "__fish_kubectl_devenv_using_subcommand credentials" -l context -d 'The name of the kubeconfig context to use' -r
complete -c kubectl-devenv -n "__fish_kubectl_devenv_using_subcommand credentials" -l cluster -d 'The name of the kubeconfig cluster to use' -r
complete -c kubectl-devenv -n "__fish_kubectl_devenv_using_subcommand credentials" -l user -d 'The name of the kubeconfig user to use' -r
complete -c kubectl-devenv -n "__fish_kubectl_devenv_using_subcommand credentials" -s n -l namespace -d 'The namespace scope for this request' -r
complete -c kubectl-devenv -n "__fish_kubectl_devenv_using_subcommand credentials" -l request-timeout -d 'How long to wait for each call to the server (e.g. 5s, 1m; 0 waits forever)' -r
complete -c kubectl-devenv -n "__fish_kubectl_devenv_using_subcommand credentials" -s o -l output -d 'Output format' -r -f -a "table\t''
json\t''
yaml\t''
dotenv\t'`NAME=value` lines (`env` only)'
shell\t'`export NAME=value` lines (`env` only)'"
complete -c kubectl-devenv -n "__fish_kubectl_devenv_using_subcommand credentials" -s v -l verbose -d 'More log output on stderr (-v info, -vv debug, -vvv trace)'
complete -c kubectl-devenv -n "__fish_kubectl_devenv_using_subcommand credentials" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c kubectl-devenv -n "__fish_kubectl_devenv_using_subcommand credentials" -s V -l version -d 'Print version'
complete -c kubectl-devenv -n "__fish_kubectl_devenv_using_subcommand run" -l stack -d 'The stack (default: the one in ./devenv.yaml, if there is one)' -r
complete -c kubectl-devenv -n "__fish_kubectl_devenv_using_subcommand run" -l port-range -d 'Local ports to forward from, e.g. 20000-20100 (default: each Service port if free, else the next free one)' -r
complete -c kubectl-devenv -n "__fish_kubectl_devenv_using_subcommand run" -l protocol -d 'How streams reach the API server: spdy, or websocket through proxies that refuse SPDY upgrades' -r -f -a "spdy\t'SPDY/3.1 (`portforward.k8s.io`), relayed to the kubelet unchanged'
websocket\t'WebSocket (`v4.channel.k8s.io`), for proxies that only pass WebSockets'"
complete -c kubectl-devenv -n "__fish_kubectl_devenv_using_subcommand run" -l kubeconfig -d 'Path to the kubeconfig file to use (default: $KUBECONFIG, then ~/.kube/config)' -r -F
complete -c kubectl-devenv -n "__fish_kubectl_devenv_using_subcommand run" -l context -d 'The name of the kubeconfig context to use' -r
complete -c kubectl-devenv -n "__fish_kubectl_devenv_using_subcommand run" -l cluster -d 'The name of the kubeconfig cluster to use' -r
complete -c kubectl-devenv -n "__fish_kubectl_devenv_using_subcommand run" -l user -d 'The name of the kubeconfig user to use' -r
complete -c kubectl-devenv -n "__fish_kubectl_devenv_using_subcommand run" -s n -l namespace -d 'The namespace scope for this request' -r
complete -c kubectl-devenv -n "__fish_kubectl_devenv_using_subcommand run" -l request-timeout -d 'How long to wait for each call to the server (e.g. 5s, 1m; 0 waits forever)' -r
complete -c kubectl-devenv -n "__fish_kubectl_devenv_using_subcommand run" -s o -l output -d 'Output format' -r -f -a "table\t''
json\t''
yaml\t''
dotenv\t'`NAME=value` lines (`env` only)'
shell\t'`export NAME=value` lines (`env` only)'"
complete -c kubectl-devenv -n "__fish_kubectl_devenv_using_subcommand run" -s v -l verbose -d 'More log output on stderr (-v info, -vv debug, -vvv trace)'
complete -c kubectl-devenv -n "__fish_kubectl_devenv_using_subcommand run" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c kubectl-devenv -n "__fish_kubectl_devenv_using_subcommand run" -s V -l version -d 'Print version'
complete -c kubectl-devenv -n "__fish_kubectl_devenv_using_subcommand env" -l stack -d 'The stack (default: the one in ./devenv.yaml, if there is one)' -r
complete -c kubectl-devenv -n "__fish_kubectl_devenv_using_subcommand env" -l kubeconfig -d 'Path to the kubeconfig file to use (default: $KUBECONFIG, then ~/.kube/config)' -r -F
complete -c kubectl-devenv -n "__fish_kubectl_devenv_using_subcommand env" -l context -d 'The name of the kubeconfig context to use' -r
complete -c kubectl-devenv -n "__fish_kubectl_devenv_using_subcommand env" -l cluster -d 'The name of the kubeconfig cluster to use' -r
complete -c kubectl-devenv -n "__fish_kubectl_devenv_using_subcommand env" -l user -d 'The name of the kubeconfig user to use' -r
complete -c kubectl-devenv -n "__fish_kubectl_devenv_using_subcommand env" -s n -l namespace -d 'The namespace scope for this request' -r
complete -c kubectl-devenv -n "__fish_kubectl_devenv_using_subcommand env" -l request-timeout -d 'How long to wait for each call to the server (e.g. 5s, 1m; 0 waits forever)' -r
complete -c kubectl-devenv -n "__fish_kubectl_devenv_using_subcommand env" -s o -l output -d 'Output format' -r -f -a "table\t''
json\t''
yaml\t''
dotenv\t'`NAME=value` lines (`env` only)'
shell\t'`export NAME=value` lines (`env` only)'"
complete -c kubectl-devenv -n "__fish_kubectl_devenv_using_subcommand env" -l show-secrets -d 'Print values that come from Secrets (passwords); otherwise they are placeholders'
complete -c kubectl-devenv -n "__fish_kubectl_devenv_using_subcommand env" -s v -l verbose -d 'More log output on stderr (-v info, -vv debug, -vvv trace)'
complete -c kubectl-devenv -n "__fish_kubectl_devenv_using_subcommand env" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c kubectl-devenv -n "__fish_kubectl_devenv_using_subcommand env" -s V -l version -d 'Print version'
complete -c kubectl-devenv -n "__fish_kubectl_devenv_using_subcommand open" -l stack -d 'The stack (default: the one in ./devenv.yaml, if there is one)' -r
complete -c kubectl-devenv -n "__fish_kubectl_devenv_using_subcommand open" -s p -l port -d 'Local port (default: the dev pod\'s HTTP port if free, else the next free one)' -r
complete -c kubectl-devenv -n "__fish_kubectl_devenv_using_subcommand open" -l address -d 'Local address to listen on' -r
complete -c kubectl-devenv -n "__fish_kubectl_devenv_using_subcommand open" -l protocol -d 'How streams reach the API server: spdy, or websocket through proxies that refuse SPDY upgrades' -r -f -a "spdy\t'SPDY/3.1 (`portforward.k8s.io`), relayed to the kubelet unchanged'
websocket\t'WebSocket (`v4.channel.k8s.io`), for proxies that only pass WebSockets'"
complete -c kubectl-devenv -n "__fish_kubectl_devenv_using_subcommand open" -l kubeconfig -d 'Path to the kubeconfig file to use (default: $KUBECONFIG, then ~/.kube/config)' -r -F
complete -c kubectl-devenv -n "__fish_kubectl_devenv_using_subcommand open" -l context -d 'The name of the kubeconfig context to use' -r
complete -c kubectl-devenv -n "__fish_kubectl_devenv_using_subcommand open" -l cluster -d 'The name of the kubeconfig cluster to use' -r
complete -c kubectl-devenv -n "__fish_kubectl_devenv_using_subcommand open" -l user -d 'The name of the kubeconfig user to use' -r
complete -c kubectl-devenv -n "__fish_kubectl_devenv_using_subcommand open" -s n -l namespace -d 'The namespace scope for this request' -r
complete -c kubectl-devenv -n "__fish_kubectl_devenv_using_subcommand open" -l request-timeout -d 'How long to wait for each call to the server (e.g. 5s, 1m; 0 waits forever)' -r
complete -c kubectl-devenv -n "__fish_kubectl_devenv_using_subcommand open" -s o -l output -d 'Output format' -r -f -a "table\t''
json\t''
yaml\t''
dotenv\t'`NAME=value` lines (`env` only)'
shell\t'`export NAME=value` lines (`env` only)'"
complete -c kubectl-devenv -n "__fish_kubectl_devenv_using_subcommand open" -s v -l verbose -d 'More log output on stderr (-v info, -vv debug, -vvv trace)'
complete -c kubectl-devenv -n "__fish_kubectl_devenv_using_subcommand open" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c kubectl-devenv -n "__fish_kubectl_devenv_using_subcommand open" -s V -l version -d 'Print version'
complete -c kubectl-devenv -n "__fish_kubectl_devenv_using_subcommand completion" -l kubeconfig -d 'Path to the kubeconfig file to use (default: $KUBECONFIG, then ~/.kube/config)' -r -F
complete -c kubectl-devenv -n "__fish_kubectl_devenv_using_subcommand completion" -l context -d 'The name of the kubeconfig context to use' -r
complete -c kubectl-devenv -n "__fish_kubectl_devenv_using_subcommand completion" -l cluster -d 'The name of the kubeconfig cluster to use' -r
complete -c kubectl-devenv -n "__fish_kubectl_devenv_using_subcommand completion" -l user -d 'The name of the kubeconfig user to use' -r
complete -c kubectl-devenv -n "__fish_kubectl_devenv_using_subcommand completion" -s n -l namespace -d 'The namespace scope for this request' -r
complete -c kubectl-devenv -n "__fish_kubectl_devenv_using_subcommand completion" -l request-timeout -d 'How long to wait for each call to the server (e.g. 5s, 1m; 0 waits forever)' -r
complete -c kubectl-devenv -n "__fish_kubectl_devenv_using_subcommand completion" -s o -l output -d 'Output format' -r -f -a "table\t''
json\t''
yaml\t''
dotenv\t'`NAME=value` lines (`env` only)'
shell\t'`export NAME=value` lines (`env` only)'"
complete -c kubectl-devenv -n "__fish_kubectl_devenv_using_subcommand completion" -s v -l verbose -d 'More log output on stderr (-v info, -vv debug, -vvv trace)'
complete -c kubectl-devenv -n "__fish_kubectl_devenv_using_subcommand completion" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c kubectl-devenv -n "__fish_kubectl_devenv_using_subcommand completion" -s V -l version -d 'Print version'
complete -c kubectl-devenv -n "__fish_kubectl_devenv_using_subcommand help; and not __fish_seen_subcommand_from up init down logs shell version status check forward sync credentials run env open completion help" -f -a "up" -d 'Create or update the dev pod and test stack (wizard, devenv.yaml or flags), then wait until Ready'
complete -c kubectl-devenv -n "__fish_kubectl_devenv_using_subcommand help; and not __fish_seen_subcommand_from up init down logs shell version status check forward sync credentials run env open completion help" -f -a "init" -d 'Write a devenv.yaml from a docker-compose.yml (--from-compose), with a report per service'
complete -c kubectl-devenv -n "__fish_kubectl_devenv_using_subcommand help; and not __fish_seen_subcommand_from up init down logs shell version status check forward sync credentials run env open completion help" -f -a "down" -d 'Delete a stack\'s objects (data volumes and credentials are kept unless --purge)'
complete -c kubectl-devenv -n "__fish_kubectl_devenv_using_subcommand help; and not __fish_seen_subcommand_from up init down logs shell version status check forward sync credentials run env open completion help" -f -a "logs" -d 'Print the logs of a component\'s pods'
complete -c kubectl-devenv -n "__fish_kubectl_devenv_using_subcommand help; and not __fish_seen_subcommand_from up init down logs shell version status check forward sync credentials run env open completion help" -f -a "shell" -d 'Open a shell, or run a command, in the dev pod (or another component)'
complete -c kubectl-devenv -n "__fish_kubectl_devenv_using_subcommand help; and not __fish_seen_subcommand_from up init down logs shell version status check forward sync credentials run env open completion help" -f -a "version" -d 'Print the client version and, unless --client, the server\'s'
complete -c kubectl-devenv -n "__fish_kubectl_devenv_using_subcommand help; and not __fish_seen_subcommand_from up init down logs shell version status check forward sync credentials run env open completion help" -f -a "status" -d 'List what kubectl-devenv manages in the cluster'
complete -c kubectl-devenv -n "__fish_kubectl_devenv_using_subcommand help; and not __fish_seen_subcommand_from up init down logs shell version status check forward sync credentials run env open completion help" -f -a "check" -d 'Check that images have variants for the nodes\' architectures, or (--isolation) that the stack is isolated'
complete -c kubectl-devenv -n "__fish_kubectl_devenv_using_subcommand help; and not __fish_seen_subcommand_from up init down logs shell version status check forward sync credentials run env open completion help" -f -a "forward" -d 'Forward local ports to the stack\'s components, following their Ready pods'
complete -c kubectl-devenv -n "__fish_kubectl_devenv_using_subcommand help; and not __fish_seen_subcommand_from up init down logs shell version status check forward sync credentials run env open completion help" -f -a "sync" -d 'Upload local code into the dev pod and keep it in sync (one-way; local files are never changed)'
complete -c kubectl-devenv -n "__fish_kubectl_devenv_using_subcommand help; and not __fish_seen_subcommand_from up init down logs shell version status check forward sync credentials run env open completion help" -f -a "credentials" -d 'Print a database component\'s generated credentials (never printed elsewhere)'
complete -c kubectl-devenv -n "__fish_kubectl_devenv_using_subcommand help; and not __fish_seen_subcommand_from up init down logs shell version status check forward sync credentials run env open completion help" -f -a "run" -d 'Run a local command against the stack: forwards, and the dev pod\'s environment pointed at them'
complete -c kubectl-devenv -n "__fish_kubectl_devenv_using_subcommand help; and not __fish_seen_subcommand_from up init down logs shell version status check forward sync credentials run env open completion help" -f -a "env" -d 'Print the dev pod\'s environment pointed at local forwards (-o dotenv, shell, json or yaml)'
complete -c kubectl-devenv -n "__fish_kubectl_devenv_using_subcommand help; and not __fish_seen_subcommand_from up init down logs shell version status check forward sync credentials run env open completion help" -f -a "open" -d 'Forward a local port to the dev pod\'s web server and print its URL'
complete -c kubectl-devenv -n "__fish_kubectl_devenv_using_subcommand help; and not __fish_seen_subcommand_from up init down logs shell version status check forward sync credentials run env open completion help" -f -a "completion" -d 'Print a shell completion script, the kubectl plugin-completion shim, or the man page'
complete -c kubectl-devenv -n "__fish_kubectl_devenv_using_subcommand help; and not __fish_seen_subcommand_from up init down logs shell version status check forward sync credentials run env open completion help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
