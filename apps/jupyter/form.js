// Keeps the CPU, memory and GPU fields within the limits of the chosen session type.
//
// Each <option> of the "Session type" select carries data-min-<field>, data-max-<field>,
// data-set-<field>, data-step-<field> and data-hide-<field> (written by form.yml.erb from the
// ood-k8s site config). OOD's own dynamic form code reads the same attributes where it is
// enabled; this file does the same where it is not, and the two agree.
'use strict';

(function () {
  const PREFIX = 'batch_connect_session_context_';
  const FIELDS = ['cpu', 'memory', 'gpus'];

  function apply(select) {
    const option = select.options[select.selectedIndex];
    if (!option) {
      return;
    }
    FIELDS.forEach(function (field) {
      const input = document.getElementById(PREFIX + field);
      if (!input) {
        return;
      }
      ['min', 'max', 'step'].forEach(function (attr) {
        const value = option.getAttribute('data-' + attr + '-' + field);
        if (value !== null) {
          input.setAttribute(attr, value);
        }
      });
      const preset = option.getAttribute('data-set-' + field);
      if (preset !== null) {
        input.value = preset;
      }
      // Never leave a value outside the new bounds, whatever was typed before.
      const min = parseFloat(input.getAttribute('min'));
      const max = parseFloat(input.getAttribute('max'));
      const value = parseFloat(input.value);
      if (!isNaN(value) && !isNaN(max) && value > max) {
        input.value = max;
      } else if (!isNaN(value) && !isNaN(min) && value < min) {
        input.value = min;
      }
      const group = input.closest('.form-group') || input.parentElement;
      if (group) {
        group.style.display = option.hasAttribute('data-hide-' + field) ? 'none' : '';
      }
    });
  }

  function init() {
    const select = document.getElementById(PREFIX + 'profile');
    if (!select) {
      return;
    }
    select.addEventListener('change', function () { apply(select); });
    apply(select);
  }

  if (document.readyState === 'loading') {
    document.addEventListener('DOMContentLoaded', init);
  } else {
    init();
  }
})();
