# frozen_string_literal: true

# What every Batch Connect app on ood-k8s shares: the site's form options, who may use what, and the
# fields that follow the chosen session type. An app's form.yml.erb and submit.yml.erb require this
# file from their own directory's sibling (install apps/_lib next to the apps, e.g. as
# /var/www/ood/apps/sys/_lib) and keep only their own fields and tokens.
#
# The options come from the ood-k8s site config, through the file 'ood-k8s ood config --out
# /etc/ood/config' writes (OOD_K8S_FORM_OPTIONS names another): the session types (profiles) with
# their bounds, the hours, the OOD cluster id. Who may use what is decided by ood-k8s's
# policy/access.py; the options file carries its group rules (users.allowed_groups, each profile's
# groups, each course's roster, profiles and term) and this file applies them for the user the dashboard
# runs as, so the form offers exactly what submit accepts. The cluster checks everything again; this is
# for the student.
#
# Standard library only: OOD renders these files inside its dashboard.

require "etc"
require "json"
require "socket"

module OodK8sForm
  OPTIONS_FILE = "/etc/ood/config/ood_k8s/form_options.json"
  OPTIONS_VERSION = 1
  ADMIN_FIX = "Administrators: run 'ood-k8s ood config --out /etc/ood/config'"
  # What the form shows when there are no usable options: nothing to choose, and a header saying why.
  NO_OPTIONS = {
    "cluster_id" => "kubernetes", "profiles" => [], "allowed_groups" => [], "default_profile" => "",
    "portal_origin" => "", "hours" => { "min" => 1, "default" => 1, "max" => 1, "step" => 1 },
  }.freeze
  NO_BOUNDS = { "min" => 0, "default" => 0, "max" => 0, "step" => 1 }.freeze

  # Form answers come from the browser: each is checked for a clear message in submit.yml.erb.
  WHOLE = /\A[0-9]{1,6}\z/.freeze
  AMOUNT = /\A[0-9]{1,6}(\.[0-9]{1,3})?\z/.freeze
  PROFILE_NAME = /\A[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?\z/.freeze

  # What this user is offered: the site's options filtered by entitlement, the preselected session
  # type, and the problem to show in the form's header (nil when there is none).
  Site = Struct.new(:options, :profiles, :chosen, :problem) do
    def cluster_id
      options["cluster_id"]
    end

    def portal_origin
      options["portal_origin"].to_s
    end

    def hours
      options["hours"]
    end

    # The "Session type" select: one option per profile the user may use, with the data-* attributes
    # that move the number fields' bounds when it is chosen (form.js, OOD's dynamic forms).
    def profile_field(label, help)
      { "widget" => "select", "label" => label, "help" => help, "value" => chosen ? chosen["name"] : "",
        "options" => profiles.map { |p| ["#{p['label']} \u2014 #{p['summary']}", p["name"], p["data"]] } }
    end

    # A number field with the chosen profile's bounds for `name` (cpu, memory, gpus).
    def number_field(name, label, help = nil)
      b = chosen ? chosen[name] : NO_BOUNDS
      attrs = { "widget" => "number_field", "label" => label, "value" => b["default"],
                "min" => b["min"], "max" => b["max"], "step" => b["step"], "required" => true }
      help ? attrs.merge("help" => help) : attrs
    end

    # Batch Connect's bc_num_hours, within the site's wall time.
    def hours_field(label = "Hours")
      { "widget" => "number_field", "label" => label, "value" => hours["default"], "min" => hours["min"],
        "max" => hours["max"], "step" => hours["step"], "required" => true,
        "help" => "The session ends after this many hours (at most #{hours['max']}); save your work before." }
    end

    # Sets the form's header when there is a problem to tell the user (or the admin).
    def annotate(form)
      form["form_header"] = "**#{problem}**" if problem
      form
    end
  end

  module_function

  # The site's options: [options, problem]. The file, else `ood-k8s ood form-options` (OOD_K8S_BIN
  # names the command when it is not on the dashboard's PATH), else nothing and a problem to show.
  def load_options(env = ENV)
    file = env.fetch("OOD_K8S_FORM_OPTIONS", OPTIONS_FILE)
    options, problem = read_options(file, env)
    if options && options["version"] != OPTIONS_VERSION
      return [NO_OPTIONS, "#{file} was written by another version of ood-k8s. #{ADMIN_FIX} again."]
    end

    [options || NO_OPTIONS, problem]
  end

  def read_options(file, env)
    [JSON.parse(File.read(file)), nil]
  rescue SystemCallError, JSON::ParserError => e
    options = ask_ood_k8s(env)
    [options, options ? nil : "This app is not set up yet (#{e.message.lines.first.to_s.strip}). #{ADMIN_FIX}."]
  end

  def ask_ood_k8s(env)
    out = IO.popen([env.fetch("OOD_K8S_BIN", "ood-k8s"), "ood", "form-options"], err: File::NULL, &:read)
    $?.success? ? JSON.parse(out) : nil
  rescue SystemCallError, JSON::ParserError
    nil
  end

  # Names of the groups of the user the dashboard runs as (primary and supplementary).
  def my_groups
    (Process.groups + [Process.gid]).uniq.map do |gid|
      Etc.getgrgid(gid).name
    rescue ArgumentError
      nil
    end.compact
  end

  # ood-k8s's rule (policy/access.py): no groups means everyone; else a member of one of them.
  def entitled?(groups, mine)
    groups.nil? || groups.empty? || !(groups & mine).empty?
  end

  # ood-k8s's course rule (courses/membership.py): a member of one of a course's groups gets its profiles
  # from the start of its term (epoch seconds; nil: open) until its end (exclusive; nil: open).
  def course_profiles(courses, mine, now = Time.now.to_f)
    (courses || []).select do |c|
      !(c["groups"] & mine).empty? && (c["start"].nil? || c["start"] <= now) && (c["end"].nil? || now < c["end"])
    end.flat_map { |c| c["profiles"] }.uniq
  end

  # What this user may choose, from the site's options (see Site).
  def site(env = ENV, mine = my_groups, now = Time.now.to_f)
    options, problem = load_options(env)
    granted = course_profiles(options["courses"], mine, now)
    profiles = options["profiles"].select { |p| entitled?(p["groups"], mine) || granted.include?(p["name"]) }
    unless entitled?(options["allowed_groups"], mine)
      profiles = []
      problem ||= "Your account may not start sessions on this cluster; ask your instructor or the " \
                  "help desk to add you to one of: #{options['allowed_groups'].join(', ')}."
    end
    chosen = profiles.find { |p| p["name"] == options["default_profile"] } || profiles.first
    Site.new(options, profiles, chosen, problem)
  end

  # The form as YAML. JSON is YAML, so every value arrives exactly as the site config has it -- once
  # the characters YAML reads as line breaks or refuses (which JSON leaves alone) are escaped too.
  def form_yaml(form)
    JSON.pretty_generate(form).gsub(/[\u007f-\u009f\u2028\u2029\ufeff\ufffe\uffff]/) { |ch| format("\\u%04x", ch.ord) }
  end

  # --- GPU-hour budgets (ood_k8s/usage/budget.py) ---------------------------------------------------

  AGENT_SOCKET = "/run/ood-k8s/agent.sock"

  # The user's GPU-hour budgets this term, asked of the agent's socket ("budget -"): the kernel names the
  # caller, so nobody reads another's. [] when no agent answers within `timeout` seconds (the form then
  # simply says nothing; submit and the agent still enforce the budget). OOD_K8S_AGENT_SOCKET names
  # another socket than the default agent.socket.
  def budgets(env = ENV, timeout = 0.3)
    sock = UNIXSocket.new(env.fetch("OOD_K8S_AGENT_SOCKET", AGENT_SOCKET))
    sock.write("budget -\n")
    data = +""
    deadline = Process.clock_gettime(Process::CLOCK_MONOTONIC) + timeout
    loop do
      left = deadline - Process.clock_gettime(Process::CLOCK_MONOTONIC)
      return [] if left <= 0 || IO.select([sock], nil, nil, left).nil?
      chunk = sock.read_nonblock(65_536, exception: false)
      break if chunk.nil?
      data << chunk unless chunk == :wait_readable
    end
    head, body = data.split("\n", 2)
    JSON.parse(head)["ok"] ? JSON.parse(body.to_s) : []
  rescue SystemCallError, IOError, JSON::ParserError
    []
  ensure
    sock&.close
  end

  # One sentence for the GPUs field: "1.5 of 20 GPU-hours left this term in cs109b." (nil: no budget).
  def budget_note(found = budgets)
    parts = found.map do |b|
      num = ->(v) { format("%.2f", v).sub(/\.?0+\z/, "") }
      whole = b["scope"] == "course" ? " (whole course)" : ""
      "#{num.call(b['left'])} of #{num.call(b['limit'])} GPU-hours left this term in #{b['course']}#{whole}"
    end
    parts.empty? ? nil : "#{parts.join('; ')}."
  end

  # --- submit.yml.erb ------------------------------------------------------------------------------

  # A form answer matching `pattern`, else an ArgumentError OOD shows the user in one line.
  def check(label, value, pattern, expected)
    text = value.to_s.strip
    raise ArgumentError, "#{label}: got #{text[0, 40].inspect}, expected #{expected}" unless text.match?(pattern)

    text
  end

  # The session's wall time in seconds, from Batch Connect's bc_num_hours.
  def wall_time(bc_num_hours)
    hours = check("Hours", bc_num_hours, WHOLE, "a whole number of hours").to_i
    raise ArgumentError, "Hours: got 0, expected at least 1" if hours < 1

    hours * 3600
  end

  # The script.native tokens of the shared fields: ood-k8s-psij reads them as the job's options.
  def session_tokens(profile:, cpu:, memory:, gpus:)
    ["--profile", check("Session type", profile, PROFILE_NAME, "one of the session types offered"),
     "--cpu", check("CPU cores", cpu, AMOUNT, "a number of cores such as 2"),
     "--memory", "#{check('Memory (GiB)', memory, AMOUNT, 'a number of GiB such as 8')}Gi",
     "--gpus", check("GPUs", gpus, WHOLE, "a whole number of GPUs")]
  end
end
