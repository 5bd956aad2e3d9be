# frozen_string_literal: true

# Renders a Batch Connect app the way Open OnDemand's dashboard does, with Debian's ruby and the
# standard library only (no Rails, no ood_core gem), for tests/ood/test_app_erb.py and
# tests/ood/test_dashboard.py.
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
#              template from the cluster's batch_connect settings merged with the app's, recorded in
#              staged_root as job_script_content.sh and job_script_options.json (Session#submit); and
#              finally what OOD's PSI/J adapter (ood_core job/adapters/psij.rb) does with that
#              script: write it to ~/ood_tmp/run.sh and build the JSON it pipes to
#              `python3 <gem>/psij/submit.py EXECUTOR` (run by the Python test).
#   launch_together -- several `submit`s, every dashboard step of each before any adapter subprocess
#              runs: ~/ood_tmp/run.sh then holds the last launch's script (the race psij.rb has).
#   card    -- one refresh of a session card: BatchConnect::Session#update_info (a completed session
#              is never asked again), psij.rb's info (its subprocess run with Open3.capture3 and no
#              timeout; [] or "Invalid job id specified" mean completed; any other failure becomes
#              Undetermined on the card), the status label (SessionsHelper#status: a psij Info has no
#              connection info, so "Starting" until connection.yml exists), the app's info and completed
#              views rendered in the session's binding, the host line and its SSH button
#              (Session#ssh_to_compute_node?: cluster and app ssh_allow against the global default), then
#              Session#update_cache_completed!.
#   delete  -- Session#destroy: psij.rb's delete unless the card is completed; Batch#delete_job turns every
#              failure, "Invalid job id specified" included, into an error the card shows.
#   view    -- view.html.erb: ERB (trim_mode "-") in the binding of an OpenStruct of connection.yml
#              (sessions/connections/_custom.html.erb).

require "erb"
require "fileutils"
require "json"
require "open3"
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

    # Session#submit records the exact script and its options in the session's directory, then
    # calls the adapter (here: what psij.rb does before it starts its subprocess).
    content_file = staged_root.join("job_script_content.sh")
    content_file.write(content)
    staged_root.join("job_script_options.json").write(JSON.pretty_generate(options))
    psij = psij_request(content, options, cluster.dig("v2", "job"))
    { "submit_text" => submit_text, "submit" => submit_hash, "content" => content,
      "content_file" => content_file.to_s }.merge(psij)
  end

  # Several launches at the same moment (two tabs, a double click, two dashboard processes): every
  # dashboard step of each, in turn, before any adapter subprocess reads what they wrote -- the
  # worst order for ~/ood_tmp/run.sh, which psij.rb writes for every launch.
  def launch_together(req)
    req.fetch("sessions").map { |one| submit(req.merge(one)) }
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

  # --- the session card: psij.rb's info/delete and BatchConnect::Session, as the dashboard runs them ---

  # OodCore::Job::Status
  class Status
    STATES = %i[undetermined completed queued_held queued running suspended].freeze

    def initialize(state)
      @state = state.to_sym
    end

    def to_sym
      @state
    end

    STATES.each { |state| define_method("#{state}?") { @state == state } }
  end

  # OodCore::Job::Info, with the fields the card reads. It has no ood_connection_info (only the
  # built-in Kubernetes adapter's subclass has), so a psij session's card reads connection.yml.
  Info = Struct.new(:id, :status, :native, :wallclock_time, :wallclock_limit, :allocated_nodes, keyword_init: true)

  class BatchError < StandardError; end        # OodCore::Job::Adapters::PSIJ::Batch::Error
  class JobAdapterError < StandardError; end   # OodCore::JobAdapterError

  # psij.rb's STATE_MAP: anything else is undetermined.
  PSIJ_STATES = { "NEW" => :undetermined, "QUEUED" => :queued, "HELD" => :queued_held, "ACTIVE" => :running,
                  "COMPLETED" => :completed }.freeze

  # OodCore::Job::Adapters::PSIJ for one cluster file: Batch#call runs `<python3> <gem>/psij/<script>
  # args` with Open3.capture3 -- no timeout: the dashboard waits as long as the process does.
  class Psij
    attr_reader :seconds

    def initialize(cluster, extra_args)
      @job = cluster.dig("v2", "job")
      @extra = extra_args || []  # the tests run as root: the admin option naming the user
      @seconds = 0.0
    end

    def call(script, *args)
      cmd = @job.dig("bin_overrides", "python3") || "python3"
      started = Process.clock_gettime(Process::CLOCK_MONOTONIC)
      out, err, status = Open3.capture3(cmd, "#{GEM_PSIJ_DIR}/#{script}", *args, *@extra, stdin_data: "", chdir: ".")
      @seconds += Process.clock_gettime(Process::CLOCK_MONOTONIC) - started
      status.success? ? out : raise(BatchError, err)
    end

    def id_args(id)
      ["--id=#{id.to_s.strip}", "--executor=#{@job['executor']}"]
    end

    # PSIJ#info: [] or "Invalid job id specified" -> completed; any other failure -> JobAdapterError.
    def info(id)
      jobs = JSON.parse(call("get_info.py", *id_args(id)), symbolize_names: true)
      return Info.new(id: id, status: Status.new(:completed)) if jobs.empty?

      v = jobs.first
      Info.new(id: v[:native_id], status: Status.new(PSIJ_STATES.fetch(v[:current_state], :undetermined)),
               native: v, wallclock_time: v[:wall_time], wallclock_limit: v[:duration],
               allocated_nodes: v[:resourcelist].nil? || v[:resourcelist].empty? ? [{ name: "" }] : v[:resourcelist])
    rescue BatchError => e
      raise JobAdapterError, e.message unless /Invalid job id specified/ =~ e.message

      Info.new(id: id, status: Status.new(:completed))
    end

    # PSIJ#delete: Batch#delete_job turns every failure into a JobAdapterError, which the outer
    # rescue (of Batch::Error only) lets through -- so even "Invalid job id specified" raises.
    def delete(id)
      begin
        call("delete.py", *id_args(id))
      rescue StandardError => e
        raise JobAdapterError, e.message
      end
    rescue BatchError => e
      raise JobAdapterError, e.message unless /Invalid job id specified/ =~ e.message
    end
  end

  # BatchConnect::Session, for one session card: the status it shows, its info and completed views
  # (rendered in this object's binding, as the dashboard does), its host line and SSH button.
  class CardSession
    attr_reader :id, :job_id, :staged_root, :errors, :polled, :adapter
    attr_accessor :cache_completed

    def initialize(req, adapter)
      s = req.fetch("session")
      @id = s.fetch("id")
      @job_id = s.fetch("job_id")
      @staged_root = Pathname.new(s.fetch("staged_root"))
      @cache_completed = s.fetch("cache_completed", false)
      @adapter = adapter
      @cluster = req.fetch("cluster")
      @app = Pathname.new(req.fetch("app"))
      @form = req.fetch("form", {})
      @errors = []
      @polled = false
    end

    # Session#update_info: a completed session is never asked about again.
    def info
      @info ||= if cache_completed
                  Info.new(id: job_id, status: Status.new(:completed))
                else
                  @polled = true
                  begin
                    @adapter.info(job_id)
                  rescue JobAdapterError => e
                    @errors << e.message
                    Info.new(id: id, status: Status.new(:undetermined))
                  end
                end
    end

    def status
      info.status
    end

    %i[queued completed suspended].each { |state| define_method("#{state}?") { status.public_send("#{state}?") } }

    def held?
      status.queued_held?
    end

    def connect_file
      staged_root.join("connection.yml")
    end

    # A psij Info has no ood_connection_info: "Starting" until connection.yml exists.
    def starting?
      status.running? && !connect_file.file?
    end

    def running?
      status.running? && !starting?
    end

    def connect
      OpenStruct.new(YAML.safe_load(connect_file.read))
    end

    # Session#ssh_to_compute_node?: the cluster's and the app's ssh_allow against the global default.
    def ssh_to_compute_node?
      global = ENV.fetch("OOD_BC_SSH_TO_COMPUTE_NODE", "true").to_s != "false"
      bc = @cluster.dig("v2", "batch_connect")
      cluster_ssh = bc.nil? ? nil : bc.fetch("ssh_allow", nil)
      app_ssh = @form.fetch("ssh_allow", nil)
      override = (!cluster_ssh.nil? && cluster_ssh != global) || (!app_ssh.nil? && app_ssh != global)
      override ? (cluster_ssh && app_ssh) : global
    end

    # Session#update_cache_completed!
    def update_cache_completed!
      self.cache_completed = true if !cache_completed && completed?
    end

    def render_view(name)
      file = @app.glob("#{name}.{md,html}.erb").find(&:file?)
      file && ERB.new(file.read, trim_mode: "-").result(binding)
    end

    # BatchConnect::SessionsHelper#status
    def label
      if starting? then "Starting"
      elsif running? then "Running"
      elsif queued? then "Queued"
      elsif held? then "Held"
      elsif suspended? then "Suspended"
      elsif completed? then "Completed"
      else "Undetermined"
      end
    end

    # card/_host.html.erb: shown for a running session; a button (a shell to the host) if SSH is allowed.
    def host
      return nil unless running?

      { "host" => connect.host, "ssh_button" => ssh_to_compute_node? ? true : false }
    end
  end

  def card_session(req)
    cluster = YAML.safe_load(File.read(req.fetch("cluster_file")))
    form = req["app"] && File.exist?(File.join(req["app"], "form.yml.erb")) ? form(req)["form"] : {}
    adapter = Psij.new(cluster, req["extra_args"])
    [CardSession.new(req.merge("cluster" => cluster, "form" => form), adapter), adapter]
  end

  # One refresh of a session card (card/_card_body.html.erb), then Session#update_cache_completed!.
  def card(req)
    session, adapter = card_session(req)
    out = {
      "status" => session.label,
      "info_view" => session.render_view("info"),
      "completed_view" => session.completed? ? session.render_view("completed") : nil,
      "host" => session.host,
      "errors" => session.errors,
    }
    session.update_cache_completed!
    out.merge("cache_completed" => session.cache_completed, "polled" => session.polled,
              "poll_seconds" => adapter.seconds)
  end

  # Session#destroy: delete the job unless it is completed; a JobAdapterError is the card's error.
  def delete(req)
    session, = card_session(req)
    session.adapter.delete(session.job_id) unless session.completed?
    { "deleted" => true }
  rescue JobAdapterError => e
    { "deleted" => false, "error" => e.message }
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
