# frozen_string_literal: true

# Renders a Batch Connect app the way Open OnDemand's dashboard does, with Debian's ruby and the
# standard library only (no Rails, no ood_core gem), for tests/ood/test_app_erb.py.
#
# Reads one JSON request on stdin, writes one JSON answer on stdout. Operations:
#
#   form    -- form.yml.erb: ERB (trim_mode "-") with no binding, then YAML.safe_load
#              (dashboard: BatchConnect::App#form_config / #read_yaml_erb).
#   submit  -- the whole of BatchConnect::Session#save: submit.yml.erb rendered with an OpenStruct of
#              the form answers plus staged_root (App#submit_opts, with bc_num_hours' own submit
#              hash merged first); the app's template/ directory copied into staged_root and every
#              *.erb in it rendered with `session` and `context` bound, the .erb dropped and the
#              file mode kept (Session#stage); the job script built by the "basic" Batch Connect
#              template from the cluster's batch_connect settings merged with the app's; and
#              finally what OOD's PSI/J adapter (ood_core job/adapters/psij.rb) does with that
#              script: write it to ~/ood_tmp/run.sh and build the JSON it pipes to
#              `python3 <gem>/psij/submit.py EXECUTOR` (run by the Python test).
#   view    -- view.html.erb: ERB (trim_mode "-") in the binding of an OpenStruct of connection.yml
#              (sessions/connections/_custom.html.erb).

require "erb"
require "fileutils"
require "json"
require "ostruct"
require "pathname"
require "yaml"

module OodHarness
  GEM_PSIJ_DIR = "/opt/ood/ondemand/root/usr/share/gems/3.3/ondemand/4.0.0/gems/ood_core/lib/ood_core/job/" \
                 "adapters/psij"

  module_function

  def render(path, bind)
    erb = ERB.new(File.read(path), trim_mode: "-")
    erb.filename = path.to_s
    erb.result(bind)
  end

  def deep_merge(a, b)
    a.merge(b) { |_, x, y| x.is_a?(Hash) && y.is_a?(Hash) ? deep_merge(x, y) : y }
  end

  def symbolize(obj)
    case obj
    when Hash then obj.each_with_object({}) { |(k, v), h| h[k.to_sym] = symbolize(v) }
    when Array then obj.map { |v| symbolize(v) }
    else obj
    end
  end

  # --- form.yml.erb ------------------------------------------------------------------------------

  def form(req)
    text = render(File.join(req["app"], "form.yml.erb"), nil)
    { "text" => text, "form" => YAML.safe_load(text) }
  end

  # --- the session context templates see as `context` ----------------------------------------------

  # BatchConnect::SessionContext answers `context.<attribute id>` with the attribute's value.
  class Context
    def initialize(values)
      @values = values.transform_keys(&:to_s)
    end

    def method_missing(name, *args)
      key = name.to_s
      return @values[key] if @values.key?(key) && args.empty?

      super
    end

    def respond_to_missing?(name, include_private = false)
      @values.key?(name.to_s) || super
    end

    def to_h
      @values.dup
    end
  end

  Session = Struct.new(:id, :staged_root, :cluster_id, :token)

  # BatchConnect::Session::TemplateBinding
  TemplateBinding = Struct.new(:session, :context) do
    def get_binding
      binding
    end
  end

  # --- submit ------------------------------------------------------------------------------------

  def submit(req)
    app = Pathname.new(req["app"])
    answers = req["answers"]
    staged_root = Pathname.new(req["staged_root"])
    cluster = YAML.safe_load(File.read(req["cluster_file"]))

    # App#submit_opts: each smart attribute's own submit hash, then submit.yml.erb on top.
    hours = answers["bc_num_hours"].to_s
    hsh = { "script" => { "wall_time" => hours.empty? ? nil : hours.to_i * 3600 } }
    struct = OpenStruct.new(answers.merge("staged_root" => staged_root))
    submit_text = render(app.join("submit.yml.erb"), struct.instance_eval { binding })
    submit_hash = deep_merge(hsh, YAML.safe_load(submit_text).to_h)

    # Session#stage: rsync -a template/ staged_root, then render every *.erb in place.
    staged_root.mkpath
    FileUtils.cp_r("#{app.join('template')}/.", staged_root.to_s, preserve: true)
    session = Session.new(req["session_id"], staged_root, req["cluster_id"], "sys/jupyter")
    tb = TemplateBinding.new(session, Context.new(answers)).get_binding
    Pathname.glob(staged_root.join("**", "*.erb")).select(&:file?).each do |file|
      rendered = file.sub_ext("")
      text = render(file, tb)
      file.rename(rendered)
      rendered.write(text)
    end

    # Session#submit: the job script and its options.
    bc = symbolize(submit_hash.fetch("batch_connect", {}))
    template = bc.fetch(:template, "basic").to_s
    bc_cluster = symbolize(cluster.dig("v2", "batch_connect", template) || {})
    content = BasicTemplate.new(bc_cluster.merge(bc).merge(
      work_dir: staged_root, conn_file: staged_root.join("connection.yml"),
      before_file: staged_root.join("before.sh"), script_file: staged_root.join("script.sh"),
      after_file: staged_root.join("after.sh"), clean_file: staged_root.join("clean.sh")
    )).to_s
    options = {
      job_name: "ood/jupyter", workdir: staged_root, output_path: staged_root.join("output.log"),
      shell_path: Pathname.new("/bin/bash"),
    }.merge(symbolize(submit_hash.fetch("script", {})))

    psij = psij_request(content, options, cluster.dig("v2", "job"))
    { "submit_text" => submit_text, "submit" => submit_hash, "content" => content }.merge(psij)
  end

  # OodCore::Job::Adapters::PSIJ#submit, for a Script built from `content` and `options`.
  def psij_request(content, opts, job)
    script_content = content.dup
    native = opts[:native]
    body = opts[:shell_path].nil? ? script_content : "#!#{opts[:shell_path]}\n#{script_content}"
    script_content.concat(native.join("\n")) unless native.nil?  # psij.rb mutates content, as here

    run_sh = File.expand_path("~/ood_tmp/run.sh")
    FileUtils.mkdir_p(File.dirname(run_sh))
    File.write(run_sh, body)
    File.chmod(0o755, run_sh)

    params = {
      environment: opts[:job_environment],
      directory: opts[:workdir],
      name: opts[:job_name],
      executable: "~/ood_tmp/run.sh",
      stdin_path: opts[:input_path],
      stdout_path: opts[:output_path],
      stderr_path: opts[:error_path],
      inherit_environment: opts[:copy_environment],
      attributes: { queue_name: opts[:queue_name], reservation_id: opts[:reservation_id],
                    account: opts[:accounting_id], duration: opts[:wall_time]&.to_i,
                    custom_attributes: opts[:args] },
      resources: { __version: 1, memory: opts[:memory] && (1_048_576 * opts[:memory]).to_i,
                   gpu_cores_per_process: opts[:gpus_per_node], cpu_cores_per_process: opts[:cores] },
    }
    params[:attributes][:queue_name] = job["queue_name"] if params[:attributes][:queue_name].nil?
    params[:stdout_path] = File.join(Dir.pwd, "stdout.txt") if params[:stdout_path].nil?
    params[:stderr_path] = File.join(Dir.pwd, "stderr.txt") if params[:stderr_path].nil?
    if native && !native.empty?
      ca = params[:attributes][:custom_attributes]
      params[:attributes][:custom_attributes] = ca.nil? ? native.dup : ca + native
    end
    unless params[:attributes][:custom_attributes].nil?
      params[:attributes][:custom_attributes] = tokens_to_hash(params[:attributes][:custom_attributes])
    end
    params[:attributes] = params[:attributes].compact
    params[:resources] = params[:resources].compact
    data = params.compact
    {
      "psij_stdin" => JSON.generate(data),
      "psij_argv" => ["#{GEM_PSIJ_DIR}/submit.py", job["executor"].to_s],
      "psij_chdir" => opts[:workdir].to_s,
      "run_sh" => run_sh,
    }
  end

  # psij.rb: ["--name", "value"] -> {name: value}; a dash token followed by a dash token -> "".
  def tokens_to_hash(tokens)
    out = {}
    i = 0
    while i < tokens.length
      token = tokens[i].to_s
      dashed = token.start_with?("-")
      name = token.start_with?("--") ? token[2..] : (dashed ? token[1..] : token)
      if i == tokens.length - 1 || !dashed || tokens[i + 1].to_s.start_with?("-")
        out[name] = ""
        i += 1
      else
        out[name] = tokens[i + 1]
        i += 2
      end
    end
    out
  end

  # The "basic" Batch Connect job script (ood_core batch_connect/template.rb), reduced to what it
  # does: cd to the session directory, define the helper functions, set host, source before.sh,
  # fork script.sh, source after.sh, write connection.yml from conn_params, wait, clean up.
  class BasicTemplate
    def initialize(ctx)
      @ctx = ctx
    end

    def conn_params
      (Array(@ctx.fetch(:conn_params, [])).map(&:to_sym) + %i[host port password]).uniq
    end

    def source_if_present(file)
      "[[ -e \"#{file}\" ]] && source \"#{file}\""
    end

    def helpers
      <<~SH
        source_helpers () {
          random_number () { shuf -i ${1}-${2} -n 1; }
          export -f random_number
          port_used () {
            local port="${1#*:}"
            local host=$((expr "${1}" : '\\(.*\\):' || echo "localhost") | awk 'END{print $NF}')
            nc -w 2 "${host}" "${port}" < /dev/null &> /dev/null
          }
          export -f port_used
          find_port () {
            local host="${1:-localhost}"
            local port=$(random_number "${2:-#{@ctx.fetch(:min_port, 2000)}}" "${3:-#{@ctx.fetch(:max_port, 65535)}}")
            while port_used "${host}:${port}"; do
              port=$(random_number "${2:-#{@ctx.fetch(:min_port, 2000)}}" "${3:-#{@ctx.fetch(:max_port, 65535)}}")
            done
            echo "${port}"
          }
          export -f find_port
          wait_until_port_used () {
            local port="${1}"
            local time="${2:-30}"
            for ((i=1; i<=time*2; i++)); do
              port_used "${port}" && return 0
              sleep 0.5
            done
            return 1
          }
          export -f wait_until_port_used
          create_passwd () {
            tr -cd '[:alnum:]' < /dev/urandom 2> /dev/null | head -c${1:-#{@ctx.fetch(:passwd_size, 32)}}
          }
          export -f create_passwd
        }
        export -f source_helpers
      SH
    end

    def to_s
      yml = conn_params.map { |p| "#{p}: $#{p}" }.join('\n')
      <<~SH
        #{@ctx.fetch(:header, '')}
        cd #{@ctx.fetch(:work_dir)}

        export host
        export port

        create_yml () {
          echo "Generating connection YAML file..."
          (
            umask 077
            echo -e "#{yml}" > "#{@ctx.fetch(:conn_file)}"
          )
        }

        clean_up () {
          echo "Cleaning up..."
          #{source_if_present(@ctx.fetch(:clean_file))}
          [[ ${SCRIPT_PID} ]] && pkill -P ${SCRIPT_PID} || :
          pkill -P $$
          exit ${1:-0}
        }

        #{helpers}
        source_helpers

        #{@ctx.fetch(:set_host, 'host=$(hostname)')}

        #{source_if_present(@ctx.fetch(:before_file))}

        echo "Script starting..."
        "#{@ctx.fetch(:script_file)}" &
        SCRIPT_PID=$!

        #{source_if_present(@ctx.fetch(:after_file))}

        create_yml

        wait ${SCRIPT_PID} || clean_up 1

        clean_up
        #{@ctx.fetch(:footer, '')}
      SH
    end
  end

  # --- view.html.erb -----------------------------------------------------------------------------

  def view(req)
    connect = OpenStruct.new(YAML.safe_load(File.read(req["connection_file"])))
    { "html" => render(File.join(req["app"], "view.html.erb"), connect.instance_eval { binding }) }
  end
end

if $PROGRAM_NAME == __FILE__
  request = JSON.parse($stdin.read)
  begin
    result = OodHarness.public_send(request.fetch("op"), request)
    $stdout.write(JSON.generate(result))
  rescue StandardError => e
    # What the dashboard would show the user (it rescues and flashes e.message).
    $stdout.write(JSON.generate("error" => "#{e.class}: #{e.message}"))
  end
end
